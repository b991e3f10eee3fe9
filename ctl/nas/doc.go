// Package nas is a network access device emulator: a real RADIUS client
// (RFC 2865/2866) that logs mobiles in (Access-Request with PAP and a
// Message-Authenticator), then sends Accounting Start, Interim-Update and
// Stop, as FIG. 3, 30 and 31 show. The testbed runs it inside a namespace
// (Emulate, or cmd-less through `go test`); LoadGen drives Access-Requests
// at a server for the radius benchmark.
//
// Client exchanges use one connected UDP socket per call with retries.
// LoadGen keeps a window of requests in flight per socket, matched by
// Identifier; it allocates per request (packet encoding).
package nas
