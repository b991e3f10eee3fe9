package header_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"samepath/dp/dptest"
	"samepath/dp/header"
)

// readCorpus decodes the []byte seed files of testdata/fuzz/FuzzParse.
func readCorpus(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("testdata/fuzz/FuzzParse/*")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") {
			t.Fatalf("%s: not a one-[]byte corpus file", name)
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[filepath.Base(name)] = []byte(s)
	}
	return out
}

// TestCapturedCorpus checks Parse against the real frames captured by
// testdata/capture.sh: every one parses, its checksums (computed by the
// Linux stack, or left to offload as a partial sum on veth) are
// recognised, and the traffic the script makes is all there.
func TestCapturedCorpus(t *testing.T) {
	seen := map[string]int{}
	for name, f := range readCorpus(t) {
		if !strings.HasPrefix(name, "capture-") {
			continue
		}
		var p header.Parsed
		if v := header.Parse(f, &p); v != header.OK {
			t.Errorf("%s: Parse = %v", name, v)
			continue
		}
		switch {
		case p.EtherType == header.EtherTypeARP:
			seen["arp"]++
		case p.IPVersion == 4 && p.Fragment:
			seen["ipv4 fragment"]++
		case p.IPVersion == 6 && p.Fragment:
			seen["ipv6 fragment"]++
		case p.IPVersion == 6 && p.ExtHeaders > 0:
			seen["ipv6 extension header"]++
		case p.Proto == header.ProtoTCP:
			seen["tcp"]++
		case p.IPVersion == 4 && p.Proto == header.ProtoICMPv4:
			if p.ICMPv4(f).IsError() {
				seen["icmpv4 error"]++
			} else {
				seen["icmpv4"]++
			}
		case p.IPVersion == 6 && p.Proto == header.ProtoICMPv6:
			if p.ICMPv6(f).IsError() {
				seen["icmpv6 error"]++
			} else {
				seen["icmpv6"]++
			}
		case p.Proto == header.ProtoUDP:
			seen["udp"]++
		}
		if p.IPVersion == 4 && !p.IPv4(f).IsChecksumValid() {
			t.Errorf("%s: IPv4 header checksum invalid in a kernel-made frame", name)
		}
		// ICMP is checksummed in software by the kernel, so it must verify.
		if !p.Fragment && (p.Proto == header.ProtoICMPv4 || p.Proto == header.ProtoICMPv6) {
			if err := dptest.VerifyChecksums(f); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	for _, k := range []string{"arp", "ipv4 fragment", "ipv6 fragment", "ipv6 extension header", "tcp", "icmpv4", "icmpv4 error", "icmpv6", "icmpv6 error"} {
		if seen[k] == 0 {
			t.Errorf("corpus has no %s frame; rerun testdata/capture.sh", k)
		}
	}
	t.Logf("captured frames by kind: %v", seen)
}
