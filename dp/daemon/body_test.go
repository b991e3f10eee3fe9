package daemon

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"samepath/ctl/api"
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

// checkBodies sends each bad body to method path and wants 400 and
// state() unchanged; then valid, which must be taken and change state(),
// so that the bad ones would have been seen had they applied.
func checkBodies(t *testing.T, base, method, path, valid string, extra []string, state func() string) {
	t.Helper()
	before := state()
	for name, body := range badBodies(valid, extra...) {
		code, msg := request(t, base, method, path, body)
		if code != http.StatusBadRequest {
			t.Errorf("%s %s with %s body %q: %d %s, want 400", method, path, name, body, code, msg)
		}
		if after := state(); after != before {
			t.Errorf("%s %s with %s body %q changed the state:\nbefore %s\nafter  %s", method, path, name, body, before, after)
			before = after // report each body's change once
		}
	}
	if code, msg := request(t, base, method, path, valid); code != http.StatusOK {
		t.Fatalf("%s %s with the valid body: %d %s", method, path, code, msg)
	}
	if state() == before {
		t.Fatalf("%s %s: the valid body changed nothing, so the test proves nothing", method, path)
	}
}

// getAll concatenates the answers to GET of paths.
func getAll(t *testing.T, base string, paths ...string) func() string {
	return func() string {
		var b strings.Builder
		for _, p := range paths {
			code, body := request(t, base, http.MethodGet, p, "")
			if code != http.StatusOK {
				t.Fatalf("GET %s: %d %s", p, code, body)
			}
			b.WriteString(body)
		}
		return b.String()
	}
}

func TestAPIRefusesBodiesNotOneObjectLB(t *testing.T) {
	for _, tc := range []struct {
		method, path, valid string
		extra               []string // a replaced table must be named, as [] for none
	}{
		{http.MethodPut, "/v1/t4", `{"rows":[]}`, []string{`{}`}},
		{http.MethodPut, "/v1/t4/row", `{"range":"10.102.0.0/24","gateways":[{"mac":"02:00:00:00:10:02","state":"up"}]}`, nil},
		{http.MethodPut, "/v1/gateways/state", `{"mac":"02:00:00:00:10:01","state":"down"}`, nil},
	} {
		t.Run(tc.path, func(t *testing.T) {
			c, _ := newAPI(t, "")
			seed := api.T4{Rows: []api.T4Row{{Range: "10.101.0.0/24", Gateways: []api.T4Gateway{{MAC: "02:00:00:00:10:01", State: "up"}}}}}
			if err := c.SetT4(context.Background(), seed); err != nil {
				t.Fatal(err)
			}
			checkBodies(t, c.Base, tc.method, tc.path, tc.valid, tc.extra, getAll(t, c.Base, "/v1/t4"))
		})
	}
}

func TestAPIRefusesBodiesNotOneObjectGW(t *testing.T) {
	for _, tc := range []struct {
		method, path, valid string
		extra               []string // a replaced table must be named, as [] for none
	}{
		{http.MethodPost, "/v1/sessions/events", `{"event":"start","session_id":"s9","device_id":"IMEI-1","ip":"10.101.0.9","seq":1}`, nil},
		{http.MethodPut, "/v1/services", `{"services":[]}`, []string{`{}`}},
		{http.MethodPut, "/v1/services/policy", `{"service":"web","policy":"lc"}`, nil},
		{http.MethodPut, "/v1/services/server", `{"service":"web","addr":"10.20.0.11:8080","state":"down"}`, nil},
		{http.MethodPut, "/v1/authz", `{"t9":[],"t8":[]}`, []string{`{}`, `{"t9":[]}`, `{"t8":[]}`}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := newGWRig(t)
			checkBodies(t, r.base, tc.method, tc.path, tc.valid, tc.extra, getAll(t, r.base, "/v1/sessions", "/v1/services", "/v1/authz"))
		})
	}
}
