package dptest_test

import (
	"bytes"
	"testing"

	"samepath/dp/dptest"
	"samepath/dp/header"
)

// FuzzDiff checks that Diff never panics on arbitrary frame pairs, reports
// nothing exactly when the frames are equal, and that VerifyChecksums never
// panics either.
//
//	go test -run '^$' -fuzz FuzzDiff -fuzztime 30s ./dp/dptest
func FuzzDiff(f *testing.F) {
	udp4 := eth().IPv4(ip4A, ip4B).UDP(1, 2).Payload([]byte("abc")).Bytes()
	seeds := [][]byte{
		udp4,
		eth().IPv4(ip4A, ip4B).TCP(1, 2).TCPOptions([]byte{2, 4, 5, 0xb4}).Bytes(),
		eth().IPv6(ip6A, ip6B).HopByHop(nil).UDP(1, 2).Bytes(),
		eth().IPv4(ip4B, ip4A).ICMPError(3, 3, 0, dptest.IP(udp4)[:28]).Bytes(),
		eth().IPv6(ip6A, ip6B).ICMPEcho(1, 2).Bytes(),
		eth().ARP(header.ARPRequest, macA, ip4A, macB, ip4B).Bytes(),
	}
	for _, a := range seeds {
		for _, b := range seeds {
			f.Add(a, b)
		}
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		d := dptest.Diff(a, b)
		if (d == "") != bytes.Equal(a, b) {
			t.Fatalf("Diff = %q for frames equal=%v", d, bytes.Equal(a, b))
		}
		_ = dptest.VerifyChecksums(a)
	})
}
