package header_test

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"samepath/dp/header"
)

// refChecksum is RFC 1071 written the obvious way: 16-bit words, 32-bit
// accumulator, end-around carry at the end.
func refChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

func TestChecksumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 3000; i++ {
		n := r.IntN(200)
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(r.Uint32())
			if i%3 == 0 {
				b[j] = 0xff // long carry chains
			}
		}
		want := refChecksum(b)
		if got := header.Fold(header.Checksum(b, 0)); got != want {
			t.Fatalf("len %d: Checksum = %#04x, want %#04x", n, got, want)
		}
		// Pieces of even length chain.
		cut := r.IntN(n+1) &^ 1
		if got := header.Fold(header.Checksum(b[cut:], header.Checksum(b[:cut], 0))); got != want {
			t.Fatalf("len %d cut %d: chained Checksum = %#04x, want %#04x", n, cut, got, want)
		}
	}
}

func TestChecksumKnownValues(t *testing.T) {
	// RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got, want := header.Fold(header.Checksum(b, 0)), ^uint16(0xddf2); got != want {
		t.Errorf("RFC 1071 example: got %#04x, want %#04x", got, want)
	}
	// A header from Wikipedia's IPv4 checksum example: checksum 0xb861.
	h := []byte{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7}
	if got := header.IPv4(h).CalculateChecksum(); got != 0xb861 {
		t.Errorf("IPv4 example: got %#04x, want 0xb861", got)
	}
	if got := header.Fold(0); got != 0xffff {
		t.Errorf("Fold(0) = %#04x, want 0xffff", got)
	}
	if got := header.Fold(0xffff); got != 0 {
		t.Errorf("Fold(0xffff) = %#04x, want 0", got)
	}
	if got := header.Fold(0x1fffe); got != 0 {
		t.Errorf("Fold(0x1fffe) = %#04x, want 0 (end-around carry)", got)
	}
}

func TestPseudoHeaderChecksum(t *testing.T) {
	// Compare with the explicit IPv4 and IPv6 pseudo-header layouts.
	src4, dst4 := []byte{10, 0, 0, 1}, []byte{192, 168, 7, 9}
	ph := append(append(append([]byte{}, src4...), dst4...), 0, 17, 0x01, 0x23)
	if got, want := header.Fold(header.PseudoHeaderChecksum(17, src4, dst4, 0x123)), refChecksum(ph); got != want {
		t.Errorf("IPv4 pseudo-header: got %#04x, want %#04x", got, want)
	}
	src6 := []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0x01}
	dst6 := []byte{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0, 0, 0, 0, 0xab, 0xcd}
	ph6 := append(append(append([]byte{}, src6...), dst6...), 0, 0, 0xff, 0xf0, 0, 0, 0, 58)
	if got, want := header.Fold(header.PseudoHeaderChecksum(58, src6, dst6, 0xfff0)), refChecksum(ph6); got != want {
		t.Errorf("IPv6 pseudo-header: got %#04x, want %#04x", got, want)
	}
}

// edgeData returns random data of n (even, >= 8) bytes whose checksum is
// forced to c by adjusting the last word (so checksum 0x0000 is covered).
func edgeData(r *rand.Rand, n int, c uint16) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	b[0] |= 0x40 // never all zero
	binary.BigEndian.PutUint16(b[n-2:], 0)
	// Want ^fold(sum + w) == c, i.e. sum + w == ^c in ones' complement:
	// w = ^c - sum = ^c + ^sum.
	sum := ^refChecksum(b)
	w := uint32(^c) + uint32(^sum)
	w = w>>16 + w&0xffff
	binary.BigEndian.PutUint16(b[n-2:], uint16(w))
	return b
}

// TestChecksumUpdateVsRecompute changes random aligned fields of random data
// and compares the incremental update (RFC 1624 eqn. 3) with a full
// recomputation, bit for bit, including data whose checksum is 0x0000 and
// new field values 0x0000 and 0xFFFF.
func TestChecksumUpdateVsRecompute(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	special := []uint16{0x0000, 0xffff, 0x0001, 0xfffe, 0x8000}
	zeroSeen := 0
	for i := 0; i < 20000; i++ {
		n := 8 + 2*r.IntN(40)
		var b []byte
		if i%4 == 0 {
			b = edgeData(r, n, special[r.IntN(2)]) // checksum 0x0000 (or 0xffff, which full computation never yields)
		} else {
			b = make([]byte, n)
			for j := range b {
				b[j] = byte(r.Uint32())
			}
			b[0] |= 0x40
		}
		old := refChecksum(b)
		if old == 0 {
			zeroSeen++
		}
		switch i % 3 {
		case 0: // 16-bit field
			off := 2 * r.IntN(n/2)
			from := binary.BigEndian.Uint16(b[off:])
			to := uint16(r.Uint32())
			if r.IntN(2) == 0 {
				to = special[r.IntN(len(special))]
			}
			binary.BigEndian.PutUint16(b[off:], to)
			if got, want := header.ChecksumUpdate16(old, from, to), refChecksum(b); got != want && !allZero(b) {
				t.Fatalf("ChecksumUpdate16(%#04x, %#04x, %#04x) = %#04x, recomputed %#04x", old, from, to, got, want)
			}
		case 1: // 32-bit field
			off := 2 * r.IntN(n/2-1)
			from := binary.BigEndian.Uint32(b[off:])
			to := r.Uint32()
			if r.IntN(3) == 0 {
				to = uint32(special[r.IntN(len(special))]) * 0x10001
			}
			binary.BigEndian.PutUint32(b[off:], to)
			if got, want := header.ChecksumUpdate32(old, from, to), refChecksum(b); got != want && !allZero(b) {
				t.Fatalf("ChecksumUpdate32(%#04x, %#08x, %#08x) = %#04x, recomputed %#04x", old, from, to, got, want)
			}
		case 2: // address-sized field (4 or 16 bytes), or 6 (odd word count)
			l := []int{4, 16, 6}[r.IntN(3)]
			if l > n {
				l = 4
			}
			off := 2 * r.IntN((n-l)/2+1)
			from := append([]byte(nil), b[off:off+l]...)
			for j := off; j < off+l; j++ {
				b[j] = byte(r.Uint32())
			}
			if got, want := header.ChecksumUpdateAddr(old, from, b[off:off+l]), refChecksum(b); got != want && !allZero(b) {
				t.Fatalf("ChecksumUpdateAddr(%#04x, % x, % x) = %#04x, recomputed %#04x", old, from, b[off:off+l], got, want)
			}
		}
	}
	if zeroSeen == 0 {
		t.Fatal("no data with checksum 0x0000 was generated; the edge case went untested")
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func TestChecksumUpdateAddrPanicsOnMismatch(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("ChecksumUpdateAddr with 4 and 16 bytes did not panic")
		}
	}()
	header.ChecksumUpdateAddr(0, make([]byte, 4), make([]byte, 16))
}
