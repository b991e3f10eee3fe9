package cfgfile

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

type conf struct {
	Health struct {
		Fall     int           `yaml:"fall"`
		Rise     int           `yaml:"rise"`
		Interval time.Duration `yaml:"interval"`
	} `yaml:"health"`
	Clients []struct {
		Prefix string `yaml:"prefix"`
		Port   uint16 `yaml:"port"`
	} `yaml:"clients"`
	Opt *struct {
		X int `yaml:"x"`
	} `yaml:"opt"`
}

func TestDecodeNamesKeys(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"flow map int", "health: {rise: 2, fall: abc}\n", "health.fall: line 1: cannot unmarshal !!str `abc` into int"},
		{"same value twice on a line", "health: {rise: abc, fall: abc}\n", "health.rise: line 1"},
		{"second of two", "health: {rise: abc, fall: abc}\n", "; health.fall: line 1"},
		{"block duration", "health:\n  interval: soon\n", "health.interval: line 2"},
		{"long value", "health:\n  fall: abcdefghijklmnop\n", "health.fall: line 2"},
		{"sequence", "clients:\n  - {prefix: a, port: 70000}\n", "clients[0].port: line 2"},
		{"map for int", "health: {fall: {a: 1}}\n", "health.fall: line 1: cannot unmarshal !!map into int"},
		{"unknown key", "health:\n  fal: 3\n", "health.fal: unknown key (line 2)"},
		{"duplicate key", "health:\n  fall: 3\n  fall: 4\n", "health.fall: line 3: mapping key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c conf
			_, err := Decode([]byte(tc.in), &c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestDecodeEmpty(t *testing.T) {
	for _, in := range []string{"", "\n\n", "# only a comment\n", "~\n", "---\n"} {
		var c conf
		if _, err := Decode([]byte(in), &c); !errors.Is(err, ErrEmpty) {
			t.Errorf("%q: error %v, want ErrEmpty", in, err)
		}
	}
}

func TestDecodeKeepsDefaultsAndHas(t *testing.T) {
	var c conf
	c.Health.Fall, c.Health.Rise = 3, 2
	root, err := Decode([]byte("health: {fall: 0}\nopt: {x: 1}\n"), &c)
	if err != nil {
		t.Fatal(err)
	}
	if c.Health.Fall != 0 || c.Health.Rise != 2 {
		t.Errorf("health %+v: want fall 0 (given) and rise 2 (default)", c.Health)
	}
	if !Has(root, "health", "fall") || Has(root, "health", "rise") || !Has(root, "opt") || Has(root, "nope", "x") {
		t.Error("Has is wrong")
	}
	if _, err := Decode([]byte("health: {fall: 1}\n---\nhealth: {fall: 2}\n"), &c); err == nil {
		t.Error("two documents accepted")
	}
}

func TestWritable(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/f"
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		ok   bool
	}{
		{"dir", WritableDir(dir, false), true},
		{"missing dir, made", WritableDir(dir+"/a/b", true), true},
		{"missing dir, not made", WritableDir(dir+"/a/b", false), false},
		{"under a file", WritableDir(file+"/a", true), false},
		{"a file", WritableDir(file, true), false},
		{"new file", WritableFile(dir + "/new.log"), true},
		{"existing file", WritableFile(file), true},
		{"file in a missing dir", WritableFile(dir + "/nodir/new.log"), false},
		{"a dir as a file", WritableFile(dir), false},
	} {
		if (tc.err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, tc.err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("the checks left %d entries behind", len(ents)-1)
	}
	if tok, err := ReadToken(file); tok != "x" || err != nil {
		t.Errorf("ReadToken: %q %v", tok, err)
	}
}
