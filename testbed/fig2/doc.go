// Package fig2 builds the FIG. 2 network of the patent in network namespaces
// and runs it: mobiles, three ingress points (a NAS router and an LB each),
// LAN1 between the LBs and two gateways, LAN2 to two server groups of two
// real servers each, a control namespace, and a management LAN joining ctl,
// NASes, LBs and gateways. Bridges live in a switch namespace: nothing is
// made in the root namespace. Every namespace is named PREFIX-ROLE.
//
//	mob1 ~w1~ nas1 -- lb1 --+              +-- gw1 --+         +-- a1 a2 (group A)
//	mob2 ~w2~ nas2 -- lb2 --+-- LAN1 (sw) -+         +-- LAN2 -+
//	     ~w3~ nas3 -- lb3 --+              +-- gw2 --+   (sw)  +-- b1 b2 (group B)
//	ctl, nas1-3, lb1-3, gw1-2 also on Mgmt (sw)
//
// Until samepathd runs, each LB namespace is a kernel router (policy rules
// send each gateway's mobile range to that gateway, the way T4 would) and
// each gateway a kernel router that counts what it forwards (nftables).
// Mobility (Move) brings the mobile's link to the old NAS down and the one to
// the new NAS up, and moves the routes in the NASes and gateways.
//
// Up records the run in a state file (StateDir/PREFIX.json) so that Down and
// Move work from another process (`testbed down`, `testbed move`); processes
// (servers, linkem) are found by namespace on Down, whoever started them.
// Nothing here runs per packet.
package fig2
