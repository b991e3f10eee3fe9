package servers

import (
	"crypto/sha256"
	"io"
	"math/rand/v2"
)

// seed of the deterministic byte stream served by /bytes/N.
var seed = [32]byte{'s', 'a', 'm', 'e', 'p', 'a', 't', 'h', '/', 'b', 'y', 't', 'e', 's'}

// Bytes returns a reader of the first n bytes of the deterministic stream
// served by GET /bytes/N.
func Bytes(n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8(seed), n)
}

// BytesSHA256 is the SHA-256 of what GET /bytes/N returns.
func BytesSHA256(n int64) [32]byte {
	h := sha256.New()
	io.Copy(h, Bytes(n))
	var s [32]byte
	h.Sum(s[:0])
	return s
}
