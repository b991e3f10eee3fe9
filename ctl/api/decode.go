package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrNotOneObject is wrapped by DecodeObject's error for a body that is
// not exactly one JSON object.
var ErrNotOneObject = errors.New("body must be exactly one JSON object")

// ErrRequired is wrapped by DecodeObject's error for a required field
// that is missing.
var ErrRequired = errors.New("field is required")

// DecodeObject reads a request body that must be exactly one JSON object
// of v's shape: not null, an array or a scalar, no field v lacks, and
// nothing but white space after it. Each of required must be present: an
// endpoint that replaces a whole table names the table's field, so that a
// body of {} is refused and emptying a table takes naming it, as [] (or
// null, which is what Go's encoder makes of a nil slice). On an error v
// may be partly filled: the caller drops it and changes no state. Both
// daemons' JSON endpoints decode through it.
func DecodeObject(r io.Reader, v any, required ...string) error {
	dec := json.NewDecoder(r)
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: empty body", ErrNotOneObject)
		}
		return err
	}
	if raw = bytes.TrimLeft(raw, " \t\r\n"); len(raw) == 0 || raw[0] != '{' {
		return fmt.Errorf("%w: got %.20s", ErrNotOneObject, raw)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil {
			return fmt.Errorf("%w: more data after the object", ErrNotOneObject)
		}
		return fmt.Errorf("%w: after the object: %w", ErrNotOneObject, err)
	}
	obj := json.NewDecoder(bytes.NewReader(raw))
	obj.DisallowUnknownFields()
	if err := obj.Decode(v); err != nil {
		return err
	}
	if len(required) > 0 {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return err
		}
	next:
		for _, k := range required {
			for f := range fields {
				if strings.EqualFold(f, k) { // as encoding/json matches names
					continue next
				}
			}
			return fmt.Errorf("%q: %w (use [] for none)", k, ErrRequired)
		}
	}
	return nil
}
