// Package testbed is the entry point to the namespace testbeds: it names runs
// (Family + a short random id, so two runs never collide and every leftover is
// recognisable), lists them and cleans up after crashed ones. The topologies
// themselves live in subpackages: fig2 (the patent's FIG. 2 network), with
// topo (namespaces, veth, bridges, routes), servers (HTTP/echo/DNS services),
// linkem (delay/loss/rate emulation) and privtest (root gate for tests).
// bin/testbed (cmd/testbed) is the command-line face of all of it.
package testbed
