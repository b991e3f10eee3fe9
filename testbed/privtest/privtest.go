// Package privtest gates tests that need root (network namespaces, XDP,
// AF_XDP). Outside CI a test without the privilege skips with a clear
// message; with CI set in the environment it fails, since CI runs as root
// and a skip there would hide a failure.
package privtest

import (
	"fmt"
	"os"
	"testing"
)

// Require skips (or, under CI, fails) t unless the process runs as root.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	msg := "needs root (network namespaces, XDP): run as root"
	if os.Getenv("CI") != "" {
		t.Fatalf("%s; CI is set, so this is a failure, not a skip", msg)
	}
	t.Skip(msg)
}

// Missing skips (or, under CI, fails) t for a tool or device the test
// needs and this machine lacks: CI installs every tool `make deps` names,
// so a skip there would hide a failure.
func Missing(t testing.TB, what string) {
	t.Helper()
	msg := "needs " + what + ", which this machine lacks"
	if os.Getenv("CI") != "" {
		t.Fatalf("%s; CI is set, so this is a failure, not a skip", msg)
	}
	t.Skip(msg)
}

// Name returns a name unique to this process for namespaces and links:
// prefix + "-" + pid in base 36 + "-" + suffix, cut to 15 bytes (IFNAMSIZ-1).
func Name(prefix, suffix string) string {
	n := fmt.Sprintf("%s%s%s", prefix, pid36(), suffix)
	if len(n) > 15 {
		n = n[:15]
	}
	return n
}

func pid36() string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	p := os.Getpid()
	var b []byte
	for p > 0 {
		b = append([]byte{digits[p%36]}, b...)
		p /= 36
	}
	return string(b)
}
