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
// SetMobileAddr re-addresses a mobile (the AAA's Framed-IP-Address at
// login): its /32 on every wireless link and the routes to it in its
// current NAS and the gateways follow.
//
// Dataplane wiring (what samepathd in an LB namespace sees):
//   - LB.Ingress ("ingress", veth to the NAS's "lb") and LB.LAN ("lan", veth
//     into LAN1) both carry addresses, so ARP/ND and the host stay with the
//     kernel (R-LB-5). Up: the NAS routes everything via LB.Ingress's address;
//     the LB rewrites the destination MAC to a gateway's LAN1 MAC (from
//     Gateways[].LAN1.MAC, ranges from Gateways[].Ranges) and sends out LAN.
//     Down: gateways route each mobile /32 and /128 via the LAN address of
//     the mobile's current LB; the LB rewrites to LB.NASMAC and sends out
//     Ingress.
//   - GRO is on at the peers of both LB interfaces (the NAS's "lb" and the
//     switch port of "lan"): a veth drops frames that XDP redirects into it
//     unless its peer has NAPI, which GRO (or an XDP program) turns on.
//   - All MACs are deterministic (02:73:70:ROLE:INDEX:PORT), so configs can
//     be generated from the plan before the run exists.
//   - Gateway counters (Testbed.Counters) come from an nftables forward
//     chain: they count kernel forwarding only, and attribute up traffic to
//     LBs by source MAC (samepathd LBs rewrite the source MAC to their own,
//     so the attribution holds with the dataplane too).
//
// Up records the run in a state file (StateDir/PREFIX.json) so that Down and
// Move work from another process (`testbed down`, `testbed move`); processes
// (servers, linkem) are found by namespace on Down, whoever started them.
// Nothing here runs per packet.
package fig2
