// Package gwsync is the gateways' T5 state sync and key-address takeover
// (R-GW-9, issue 17).
//
// Each gateway streams the bindings on its own key addresses (creations,
// TCP state changes, ends) to its peers, the substitutes of its ranges,
// over a TCP connection of its own on the management side, authenticated
// by the shared token. Nothing runs on the packet path: the worker
// journals changes into a bounded SPSC ring (nat.Journal; a full ring
// drops and counts, the worker never waits), the drain goroutine empties
// it every Batch and queues the batch for each peer's sender, and every
// Refresh it queues each own binding again (fresh idle timers at the
// peer, repair of what a full ring lost). A sender that (re)connects
// first sends its whole table (a dump, then a dump-end frame): that is
// how a restarted primary gets the bindings of its ranges back,
// including flows its substitute opened meanwhile.
//
// The receiver hands each frame's changes to the worker (dp.GW
// InstallSync), which installs them on its table's peer addresses.
//
// Takeover: when the stream of a peer seen alive since the start is
// dead (closed, which a killed process's kernel does at once, or silent
// for PeerTimeout), the manager takes over its key addresses, as VRRP
// does when the master's advertisements stop (Takeover: the address on
// the server-side interface, so the kernel answers ARP/ND, and
// gratuitous ARP / unsolicited NA, as keepalived moves a VIP), so the
// servers' replies come here. Not waiting for the LBs' switch matters:
// a downloading mobile sends nothing up while the server's segments go
// to the dead gateway, so nothing from it would ever show the takeover
// is needed. If only the link between the gateways fails, both keep
// working: the servers answer the substitute, which holds the bindings
// and sends down, while the LBs still steer up to the primary; the
// addresses go back when the stream returns. Failback: once the peer's stream is back
// and says it is ready (it holds its peers' dumps), the addresses go
// back (Giveback) and the peer announces them itself (Announce).
// Readiness: a starting gateway is ready when every peer's dump arrived
// or Wait passed; samepathd's /healthz answers 503 until then, so the
// health monitor marks it up only after its sync.
//
// Loss window: a flow opened within the last Batch (plus the write)
// before a crash is not at the substitute; it ends. A TCP connection
// terminated by tcpproxy (T11 terminate) never moves: its state is in
// the terminator's netstack.
//
// Allocation: the drain, senders and readers allocate per batch
// (control path); the worker's journal push allocates nothing.
package gwsync
