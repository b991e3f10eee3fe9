package topo

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// writeSysctl writes /proc/sys/KEY (KEY like "net/ipv4/ip_forward") in the
// namespace of the calling thread.
func writeSysctl(key, val string) error {
	p := filepath.Join("/proc/sys", filepath.Clean("/"+key))
	if err := os.WriteFile(p, []byte(val), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, val, err)
	}
	return nil
}

func readSysctl(key string) (string, error) {
	b, err := os.ReadFile(filepath.Join("/proc/sys", filepath.Clean("/"+key)))
	if err != nil {
		return "", fmt.Errorf("sysctl %s: %w", key, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Sysctl sets KEY=VAL (e.g. "net/ipv4/ip_forward", "1") inside namespace ns.
func Sysctl(ns, key, val string) error {
	return Do(ns, func() error { return writeSysctl(key, val) })
}

// ReadSysctl reads KEY inside namespace ns.
func ReadSysctl(ns, key string) (string, error) {
	var v string
	err := Do(ns, func() error {
		var err error
		v, err = readSysctl(key)
		return err
	})
	return v, err
}
