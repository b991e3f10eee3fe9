// Package topo is the small toolkit the testbed builds topologies with:
// named network namespaces (created and removed the way iproute2 does, under
// /run/netns), veth pairs created directly between two namespaces, bridges,
// addresses, routes, policy rules, sysctls and ethtool feature flags, all
// through netlink or ioctls run inside the target namespace. Nothing it makes
// lands in the root namespace.
//
// Running code inside a namespace: Do runs a function on a dedicated OS
// thread locked to the goroutine and switched into the namespace; sockets
// created there stay in that namespace after the thread switches back (Dial,
// Listen and Ping rely on this). Command wraps `ip netns exec`, which also
// remounts /sys for the namespace, so a daemon started with it sees its own
// /sys/class/net (samepathd needs this for threaded NAPI and XDP).
//
// Ownership: an NS value owns a netlink handle and a namespace fd; Close
// releases both. Nothing here runs per packet; everything allocates freely.
package topo
