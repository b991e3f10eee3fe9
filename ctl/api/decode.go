package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ErrNotOneObject is wrapped by DecodeObject's error for a body that is
// not exactly one JSON object.
var ErrNotOneObject = errors.New("body must be exactly one JSON object")

// DecodeObject reads a request body that must be exactly one JSON object
// of v's shape: not null, an array or a scalar, no field v lacks, and
// nothing but white space after it. On an error v may be partly filled:
// the caller drops it and changes no state. Both daemons' JSON endpoints
// decode through it.
func DecodeObject(r io.Reader, v any) error {
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
	return obj.Decode(v)
}
