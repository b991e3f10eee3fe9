// Package cfgfile is what the configuration files of samepathd and
// samepath-control share: the YAML decoding (unknown keys are errors, an
// empty file says so, a type error names the key path it is at,
// "health.fall", not only the line) and the checks of the files and
// directories a configuration names (WritableDir, WritableFile,
// ReadToken), which their -check and their start both run. Nothing here
// is on a hot path; it allocates freely.
package cfgfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrEmpty is returned for a file without a YAML document (empty, blank,
// only comments, or a lone null).
var ErrEmpty = errors.New("the file is empty: it holds no configuration")

// KeyError is a decoding error whose parts name their key paths.
type KeyError struct {
	Errs []string        // "health.fall: line 3: cannot unmarshal !!str `abc` into int"
	Err  *yaml.TypeError // what the decoder said
}

func (e *KeyError) Error() string { return strings.Join(e.Errs, "; ") }
func (e *KeyError) Unwrap() error { return e.Err }

// Decode decodes the one YAML document in data into out, which holds the
// defaults (keys absent from data keep them). It returns the document's
// root mapping for Has.
func Decode(data []byte, out any) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err // syntax error: yaml names the line
	}
	if len(doc.Content) == 0 || doc.Content[0].ShortTag() == "!!null" {
		return nil, ErrEmpty
	}
	root := doc.Content[0]
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return root, named(root, reflect.TypeOf(out), te)
		}
		return root, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return root, errors.New("more than one YAML document: want one")
	}
	return root, nil
}

// Has reports whether the mapping root has the key path (and it is not null).
func Has(root *yaml.Node, path ...string) bool {
	n := root
	for _, k := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			return false
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n != nil && n.ShortTag() != "!!null"
}

// entry is one key or value node with its path and, for a value, the Go
// type it decodes into (nil where unknown).
type entry struct {
	path  string
	node  *yaml.Node
	isKey bool
	typ   reflect.Type
}

func walk(n *yaml.Node, path string, t reflect.Type, out *[]entry) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			vt := fieldType(t, k.Value)
			*out = append(*out, entry{p, k, true, nil}, entry{p, v, false, vt})
			walk(v, p, vt, out)
		}
	case yaml.SequenceNode:
		var et reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			et = t.Elem()
		}
		for i, v := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			*out = append(*out, entry{p, v, false, et})
			walk(v, p, et, out)
		}
	}
}

// fieldType is the type a mapping of Go type t holds under key.
func fieldType(t reflect.Type, key string) reflect.Type {
	if t == nil {
		return nil
	}
	switch t.Kind() {
	case reflect.Map:
		return t.Elem()
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if strings.Contains(","+opts+",", ",inline,") {
				if ft := fieldType(f.Type, key); ft != nil {
					return ft
				}
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			if name == key {
				return f.Type
			}
		}
	}
	return nil
}

// into is the name the decoder gives t in its messages (pointers followed).
func into(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return ""
	}
	return t.String()
}

var (
	reUnmarshal = regexp.MustCompile("^line (\\d+): cannot unmarshal (\\S+)(?: `(.*)`)? into (.*)$")
	reField     = regexp.MustCompile(`^line (\d+): field (.+) not found in type `)
	reDup       = regexp.MustCompile(`^line (\d+): mapping key "(.*)" already defined at line \d+`)
)

// named prefixes each of te's messages with the key path of the node it
// is about. The decoder reports in document order, so the first node not
// yet claimed that fits a message is the one.
func named(root *yaml.Node, t reflect.Type, te *yaml.TypeError) error {
	var es []entry
	walk(root, "", t, &es)
	used := make([]bool, len(es))
	// typ, when not "", is the Go type the node must decode into (an
	// outer mapping on the same line as the wrong one is no candidate).
	find := func(line int, key bool, fits func(n *yaml.Node) bool, typ string) string {
		for i, e := range es {
			if !used[i] && e.isKey == key && e.node.Line == line && fits(e.node) && (typ == "" || e.typ == nil || into(e.typ) == typ) {
				used[i] = true
				return e.path
			}
		}
		return ""
	}
	ke := &KeyError{Err: te}
	for _, msg := range te.Errors {
		path := ""
		if m := reUnmarshal.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			path = find(line, false, func(n *yaml.Node) bool {
				return n.ShortTag() == m[2] && (n.Kind != yaml.ScalarNode || shown(n.Value) == m[3])
			}, m[4])
		} else if m := reField.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			path = find(line, true, func(n *yaml.Node) bool { return n.Value == m[2] }, "")
			if path != "" {
				msg = "unknown key (line " + m[1] + ")"
			}
		} else if m := reDup.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			path = find(line, true, func(n *yaml.Node) bool { return n.Value == m[2] }, "")
		}
		if path == "" {
			ke.Errs = append(ke.Errs, msg)
			continue
		}
		ke.Errs = append(ke.Errs, fmt.Sprintf("%s: %s", path, msg))
	}
	return ke
}

// shown is how the decoder quotes a value in its messages.
func shown(v string) string {
	if len(v) > 10 {
		return v[:7] + "..."
	}
	return v
}

// ReadToken reads a token file, trimmed of surrounding blanks; an empty
// path gives "", a file with nothing else in it an error.
func ReadToken(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	return t, nil
}

// WritableDir checks that dir is a directory this process can create
// files in or, with create, that it can be made (os.MkdirAll): its nearest
// existing ancestor is such a directory. It leaves nothing behind.
func WritableDir(dir string, create bool) error {
	d := dir
	for {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s is not a directory", d)
			}
			break
		}
		if !errors.Is(err, os.ErrNotExist) || !create {
			return err
		}
		up := filepath.Dir(d)
		if up == d {
			return err
		}
		d = up
	}
	f, err := os.CreateTemp(d, ".samepath-check-*")
	if err != nil {
		return fmt.Errorf("%s is not writable: %w", d, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// WritableFile checks that path can be opened for appending: an existing
// regular file that opens so, or a new one in a writable directory.
func WritableFile(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return WritableDir(filepath.Dir(path), false)
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", path)
	}
	return Openable(path, os.O_WRONLY|os.O_APPEND)
}

// Openable checks that the existing file path opens with flag.
func Openable(path string, flag int) error {
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return err
	}
	return f.Close()
}
