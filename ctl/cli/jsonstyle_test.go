package cli

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"samepath/ctl/aaa"
	"samepath/ctl/api"
	"samepath/ctl/control"
	"samepath/ctl/nas"
	"samepath/ctl/session"
	"samepath/dp/acct"
)

// Issue 18: one JSON style. Every key samepathctl -o json prints for a
// struct field is lowercase snake case: a field without a json tag would
// print as Go spells it (health's Kind/Name/URL did).
func TestJSONKeysLowercase(t *testing.T) {
	for _, v := range []any{
		control.Status{}, []aaa.Gateway{}, []control.UserView{}, []session.Session{}, []aaa.Assignment{},
		control.Counters{}, api.Counters{}, control.HealthReport{}, api.T4{}, []api.T4{}, api.Status{},
		api.Services{}, api.GWSessions{}, api.Flows{}, api.Authz{}, control.AuthzStatus{}, []nas.Step{},
		acct.Entry{}, control.Terminated{}, []gwResult{}, captureSummary{}, api.CaptureResult{}, api.CaptureRequest{},
	} {
		for _, bad := range badKeys(reflect.TypeOf(v), reflect.TypeOf(v).String(), map[reflect.Type]bool{}) {
			t.Errorf("%s", bad)
		}
	}
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

func badKeys(t reflect.Type, path string, seen map[reflect.Type]bool) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] || t.Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(jsonMarshaler) ||
		t.Implements(textMarshaler) || reflect.PointerTo(t).Implements(textMarshaler) {
		return nil
	}
	seen[t] = true
	var bad []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-":
			continue
		case name == "" && f.Anonymous:
			// Promoted into the parent object.
		case name == "":
			bad = append(bad, path+"."+f.Name+": no json tag (prints as "+f.Name+")")
		case name != strings.ToLower(name):
			bad = append(bad, path+"."+f.Name+": key "+name+" is not lowercase")
		}
		bad = append(bad, badKeys(f.Type, path+"."+f.Name, seen)...)
	}
	return bad
}
