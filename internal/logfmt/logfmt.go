// Package logfmt is the -log-format flag every daemon shares: log/slog
// lines as text (logfmt-like key=value, the default) or as one JSON
// object per line for log shippers.
package logfmt

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
)

// Formats are the accepted -log-format values.
const (
	Text = "text"
	JSON = "json"
)

// AddFlag registers -log-format on fs and returns its value.
func AddFlag(fs *flag.FlagSet) *string {
	return fs.String("log-format", Text, "log line format: text or json (one JSON object per line)")
}

// New returns a logger writing format to w at level; an unknown format
// is an error naming the flag.
func New(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	o := &slog.HandlerOptions{Level: level}
	switch format {
	case Text, "":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case JSON:
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, fmt.Errorf("-log-format %q: want %s or %s", format, Text, JSON)
}
