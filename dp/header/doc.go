// Package header parses Ethernet frames and gives typed views over their
// headers: Ethernet (with one optional 802.1Q tag), ARP, IPv4, IPv6 (with
// extension headers), TCP, UDP, ICMPv4 and ICMPv6, plus the Internet
// checksum and its incremental update (RFC 1071, RFC 1624).
//
// Parse once, then view. Parse(b, &p) checks every length in the frame once
// and fills a caller-owned Parsed with offsets and the fields pipelines
// branch on; it never panics, whatever the bytes, and returns a Verdict
// instead of an error. Views (type IPv4 []byte and so on) are plain slices
// with accessors and setters; they do no bounds checks of their own and are
// valid only over bytes that Parse accepted — build them with the Parsed
// helpers (p.IPv4(b), p.TCP(b), ...) so they are cut to the IP length.
//
// Setters named ...WithChecksumUpdate, DecTTL and UpdateChecksumAddr keep
// checksums right incrementally (RFC 1624 eqn. 3); the tests compare them
// bit for bit with a full recomputation. See checksum.go for the rules on
// the two zeros of ones' complement and the UDP zero checksum.
//
// Ownership and allocation: nothing here keeps a reference to a frame or
// starts a goroutine. Parse, every accessor, every setter and every checksum
// function do not allocate (AllocsPerRun tests guard this). Views alias the
// frame: they are valid as long as the frame's buffer is.
//
// Hot loops: Parse and the NAT rewrites are the BenchmarkParse* and
// BenchmarkRewrite* entries of BENCHMARKS.md.
package header
