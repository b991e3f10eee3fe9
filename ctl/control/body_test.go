package control_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// badBodies are request bodies that are not exactly one JSON object of
// the endpoint's shape, built around valid, a body the endpoint takes,
// and with the endpoint's own bad ones (extra).
func badBodies(valid string, extra ...string) map[string]string {
	m := map[string]string{
		"null":                 `null`,
		"empty":                ``,
		"array":                `[]`,
		"string":               `"x"`,
		"{}garbage":            `{}garbage`,
		"{} {}":                `{} {}`,
		"unknown field":        `{"no_such_field":1}`,
		"valid then garbage":   valid + `garbage`,
		"valid twice":          valid + ` ` + valid,
		"valid then null":      valid + "\nnull",
		"valid in an array":    `[` + valid + `]`,
		"valid, unknown field": strings.TrimSuffix(valid, `}`) + `,"no_such_field":1}`,
	}
	for _, b := range extra {
		m[b] = b
	}
	return m
}

func request(t *testing.T, base, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestAPIRefusesBodiesNotOneObject sends every JSON endpoint each bad
// body and wants 400 with T1, T2, T8 and T9 unchanged; then the valid
// body, which must be taken and change them, so that a bad body that
// applied would have been seen.
func TestAPIRefusesBodiesNotOneObject(t *testing.T) {
	for _, tc := range []struct {
		method, path, valid string
		extra               []string // the replaced tables must be named, as [] for none
	}{
		{http.MethodPut, "/v1/gateways", `{"name":"gw3","range":"10.100.2.0/24","mac":"02:00:00:00:00:33"}`, nil},
		{http.MethodPut, "/v1/gateways/gw1/admin", `{"admin":"drain"}`, nil},
		{http.MethodPut, "/v1/users", `{"id":"u9","password":"pw9"}`, nil},
		{http.MethodPut, "/v1/authz", `{"t9":[],"t8":[]}`, []string{`{}`, `{"t9":[]}`, `{"t8":[]}`}},
		{http.MethodPut, "/v1/authz/t9", `{"rep":"10.30.0.9","service_type":"mail"}`, nil},
		{http.MethodPut, "/v1/authz/t8", `{"device":"IMEI-9","service_type":"web","allowed":true}`, nil},
	} {
		t.Run(tc.path, func(t *testing.T) {
			cfg := authzConfig(t.TempDir())
			cfg.Health.Disabled = true
			_, cl, _ := run(t, cfg)
			state := func() string {
				var b strings.Builder
				for _, p := range []string{"/v1/gateways", "/v1/users", "/v1/authz"} {
					code, body := request(t, cl.Base, http.MethodGet, p, "")
					if code != http.StatusOK {
						t.Fatalf("GET %s: %d %s", p, code, body)
					}
					b.WriteString(body)
				}
				return b.String()
			}
			before := state()
			for name, body := range badBodies(tc.valid, tc.extra...) {
				code, msg := request(t, cl.Base, tc.method, tc.path, body)
				if code != http.StatusBadRequest {
					t.Errorf("%s body %q: %d %s, want 400", name, body, code, msg)
				}
				if after := state(); after != before {
					t.Errorf("%s body %q changed the state:\nbefore %s\nafter  %s", name, body, before, after)
					before = after // report each body's change once
				}
			}
			if code, msg := request(t, cl.Base, tc.method, tc.path, tc.valid); code != http.StatusOK {
				t.Fatalf("the valid body: %d %s", code, msg)
			}
			if state() == before {
				t.Fatal("the valid body changed nothing, so the test proves nothing")
			}
		})
	}
}
