// Package servers holds the real services the testbed runs inside its
// server namespaces ("service providing servers" of FIG. 2):
//
//   - HTTP (TCP): GET /bytes/N returns N deterministic bytes (the ChaCha8
//     stream of a fixed seed, so anyone can compute the SHA-256 with
//     BytesSHA256 without downloading), with Content-Length; GET /file/NAME
//     serves a file from a directory; GET / answers the server's name;
//     GET /healthz answers "ok".
//   - TCP echo and UDP echo: what comes in goes back.
//   - DNS-like UDP: answers A, AAAA and TXT queries for any name with the
//     server's own addresses and name (enough for a client to see which actual
//     server answered), FORMERR for what does not parse.
//
// Main runs them as a process (`testbed serve ...`); each listener gets its
// own goroutine and the process exits on SIGTERM/SIGINT. Allocation is per
// request, which is fine: these are test servers, not the dataplane.
package servers
