// Package aaa is the user authentication device of the patent (FIG. 3-8):
// a RADIUS server (RFC 2865/2866 over UDP, layeh.com/radius for attribute
// coding) that authenticates users from T2 (Users), assigns each mobile
// device an address from the range of the least loaded healthy gateway in
// T1 (Pool, FIG. 5 steps S1-S16), and hands Accounting-Requests to the
// session manager (the Accounter interface, implemented by ctl/session).
//
// Goroutines: Server.Serve runs Readers goroutines per socket; each request
// is then handled on its own goroutine (at most MaxInFlight) because the
// answer waits until the state change it depends on is durable in ctl/store
// (group commit). Pool and Users are guarded by their own mutexes; Pool hands
// back store operations so that the session manager can commit a session and
// its address binding in one batch.
//
// Security: per-client shared secrets by source prefix (unknown sources
// dropped and counted); Message-Authenticator verified whenever present and
// required on Access-Request by default (BlastRADIUS, CVE-2024-3596); every
// answer carries a Message-Authenticator as its first attribute; Accounting
// Request Authenticators verified. Retransmissions (same source, Identifier
// and Request Authenticator) are answered from a cache, never processed twice.
//
// Status-Server (RFC 5997), the probe NASes use to tell a live server from
// a dead one, is answered on both ports (Access-Accept, Accounting-
// Response) when it carries a valid Message-Authenticator, and silently
// dropped without one; it touches no user, address or session.
//
// Disconnect (RFC 5176): Server.Disconnect sends a Disconnect-Request for
// a session to the NAS it last started at (the accounting source address,
// port disconnect_port of its client), signed with the client's secret,
// with a Message-Authenticator, retransmitted up to three times; the
// control process sends one when an operator terminates a session.
//
// Allocation: per request, the parsed packet, its response and the cached
// encoded answer; read buffers come from a sync.Pool. PBKDF2 runs once per
// user and process (then an HMAC memo, see Users.CheckPAP).
package aaa
