package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"samepath/ctl/aaa"
	"samepath/ctl/control"
	"samepath/ctl/session"

	"samepath/testbed/privtest"
)

// fakeControl serves the part of the control API completion reads.
func fakeControl(t *testing.T, gwAPI string) *httptest.Server {
	mux := http.NewServeMux()
	reply := func(path string, v any) {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, _ *http.Request) { json.NewEncoder(w).Encode(v) })
	}
	reply("/v1/gateways", []aaa.Gateway{
		{GatewayConfig: aaa.GatewayConfig{Name: "gw1", Range: "10.101.0.0/24", API: gwAPI, MAC: "02:00:00:00:01:01"}},
		{GatewayConfig: aaa.GatewayConfig{Name: "gw2", Range: "10.102.0.0/24"}},
	})
	reply("/v1/users", []control.UserView{{User: aaa.User{ID: "alice"}}, {User: aaa.User{ID: "bob"}}})
	reply("/v1/sessions", []session.Session{{ID: "nas1-mob1-1"}, {ID: "nas1-mob2-1"}})
	reply("/v1/lbs", []control.LBInfo{{Name: "lb1", API: "http://lb1.example:7700"}})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestCompletionBash sources `samepathctl completion bash` in bash, sets
// COMP_WORDS and COMP_CWORD as bash does on TAB, calls the completion
// function and checks COMPREPLY. The script runs samepathctl (this test
// binary, see TestMain) against a fake control API and a fake gateway,
// so names, ids, services and servers come from the live APIs.
func TestCompletionBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		privtest.Missing(t, "bash")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "samepathctl")
	wrapper := "#!/bin/sh\nSAMEPATHCTL_TEST_MAIN=1 exec " + shQuote(self) + ` "$@"` + "\n"
	if err := os.WriteFile(bin, []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	rc, script, errb := ctl(Defaults{}, "completion", "bash")
	if rc != 0 || !strings.Contains(script, "__start_samepathctl") {
		t.Fatalf("completion bash: exit %d: %s", rc, errb)
	}
	scriptFile := filepath.Join(dir, "samepathctl.bash")
	os.WriteFile(scriptFile, []byte(script), 0o644)

	gw := newFakeGW(t, "tok", demoServices)
	gwSrv := httptest.NewServer(gw.handler())
	defer gwSrv.Close()
	ctlSrv := fakeControl(t, gwSrv.URL)
	tf := filepath.Join(dir, "token")
	os.WriteFile(tf, []byte("tok\n"), 0o600)

	complete := func(words ...string) []string {
		t.Helper()
		var quoted []string
		for _, w := range append([]string{bin}, words...) {
			quoted = append(quoted, shQuote(w))
		}
		// The bash-completion package provides _get_comp_words_by_ref;
		// without it, a minimal one (no re-splitting at = and :).
		prog := `
if [ -r /usr/share/bash-completion/bash_completion ]; then . /usr/share/bash-completion/bash_completion; fi
if ! declare -F _get_comp_words_by_ref >/dev/null; then
  _get_comp_words_by_ref() { cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}; words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; }
fi
. ` + shQuote(scriptFile) + `
COMP_WORDS=(` + strings.Join(quoted, " ") + `)
COMP_CWORD=$((${#COMP_WORDS[@]}-1))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
COMP_TYPE=9
__start_samepathctl 2>/dev/null
printf '%s\n' "${COMPREPLY[@]}"
`
		cmd := exec.Command(bash, "--norc", "--noprofile", "-c", prog)
		cmd.Env = append(os.Environ(), "SAMEPATH_CONTROL="+ctlSrv.URL)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("bash: %v", err)
		}
		var got []string
		for _, l := range strings.Split(string(out), "\n") {
			// Several candidates come with their description: "name  (desc)".
			if f := strings.Fields(l); len(f) > 0 {
				got = append(got, f[0])
			}
		}
		sort.Strings(got)
		return got
	}
	for _, c := range []struct {
		words []string
		want  []string
	}{
		{[]string{"sess"}, []string{"sessions"}},
		{[]string{"sessions", ""}, []string{"list", "show", "terminate"}},
		{[]string{"gateways", "show", ""}, []string{"gw1", "gw2"}},
		{[]string{"gateways", "delete", "gw2"}, []string{"gw2"}},
		{[]string{"gateways", "state", "gw1", ""}, []string{"down", "drain", "up"}},
		{[]string{"users", "show", ""}, []string{"alice", "bob"}},
		{[]string{"users", "delete", "b"}, []string{"bob"}},
		{[]string{"sessions", "terminate", ""}, []string{"nas1-mob1-1", "nas1-mob2-1"}},
		{[]string{"sessions", "show", "nas1-mob2"}, []string{"nas1-mob2-1"}},
		{[]string{"sessions", "terminate", "nas1-mob1-1", ""}, nil}, // one ID only
		{[]string{"sessions", "list", "-o", ""}, []string{"json", "table"}},
		{[]string{"-token-file", tf, "gw", "policy", ""}, []string{"dns-a", "web-a"}},
		{[]string{"-token-file", tf, "gw", "policy", "web-a", ""}, []string{"cpu", "fastest", "lc", "rr", "wrr"}},
		{[]string{"-token-file", tf, "gw", "server", "-gw", gwSrv.URL, "web-a", ""}, []string{"10.20.0.11:80", "10.20.0.12:80"}},
		{[]string{"gw", "policy", ""}, nil}, // no token: the gateway refuses
		{[]string{"t4", "show", "-lb", ""}, []string{"all", "http://lb1.example:7700"}},
		{[]string{"-control", "http://127.0.0.1:1", "gateways", "show", ""}, nil},
		{[]string{"completion", ""}, []string{"bash", "fish", "powershell", "zsh"}},
	} {
		if d := cmp.Diff(c.want, complete(c.words...)); d != "" {
			t.Errorf("samepathctl %s<TAB> (-want +got):\n%s", strings.Join(c.words, " "), d)
		}
	}
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
