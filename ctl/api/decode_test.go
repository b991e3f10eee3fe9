package api

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeObject(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       GatewayState
		wantErr    bool
		notObject  bool // the error wraps ErrNotOneObject
	}{
		{name: "object", body: `{"mac":"02:00:00:00:00:01","state":"up"}`, want: GatewayState{MAC: "02:00:00:00:00:01", State: "up"}},
		{name: "white space around", body: " \n{\"state\":\"down\"}\r\n\t ", want: GatewayState{State: "down"}},
		{name: "empty object", body: `{}`},
		{name: "empty body", wantErr: true, notObject: true, body: ``},
		{name: "null", wantErr: true, notObject: true, body: `null`},
		{name: "array", wantErr: true, notObject: true, body: `[]`},
		{name: "string", wantErr: true, notObject: true, body: `"up"`},
		{name: "number", wantErr: true, notObject: true, body: `1`},
		{name: "garbage after", wantErr: true, notObject: true, body: `{}garbage`},
		{name: "two objects", wantErr: true, notObject: true, body: `{} {}`},
		{name: "object then null", wantErr: true, notObject: true, body: `{"state":"up"} null`},
		{name: "unknown field", wantErr: true, body: `{"state":"up","colour":"red"}`},
		{name: "wrong type", wantErr: true, body: `{"state":1}`},
		{name: "truncated", wantErr: true, body: `{"state":"up"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got GatewayState
			err := DecodeObject(strings.NewReader(tc.body), &got)
			if tc.wantErr != (err != nil) {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if errors.Is(err, ErrNotOneObject) != tc.notObject {
				t.Errorf("err = %v: wraps ErrNotOneObject %v, want %v", err, !tc.notObject, tc.notObject)
			}
			if err == nil {
				if d := cmp.Diff(tc.want, got); d != "" {
					t.Errorf("decoded (-want +got):\n%s", d)
				}
			}
		})
	}
}

func TestDecodeObjectRequired(t *testing.T) {
	for _, tc := range []struct {
		body    string
		wantErr bool
	}{
		{`{"rows":[]}`, false},
		{`{"rows":[{"range":"10.0.0.0/8","gateways":[]}]}`, false},
		{`{"rows":null}`, false}, // a nil slice from Go's encoder
		{`{}`, true},
		{`{"rws":[]}`, true},   // unknown, and rows missing
		{`{"Rows":[]}`, false}, // encoding/json matches field names without case
	} {
		var got T4
		err := DecodeObject(strings.NewReader(tc.body), &got, "rows")
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err = %v, want error %v", tc.body, err, tc.wantErr)
		}
		if tc.body == `{}` && !errors.Is(err, ErrRequired) {
			t.Errorf("%s: err = %v, want ErrRequired", tc.body, err)
		}
	}
}
