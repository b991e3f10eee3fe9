// Package gwe2e holds the packet gateway's privileged end-to-end tests
// (issue 4, SPEC R-GW-1..8): the FIG. 2 testbed of testbed/demo with
// samepathd running as the three LBs and the two gateways, real kernel
// TCP/UDP on the mobiles and the servers, and the gateways' control APIs
// read for counters, NAT records and sessions.
//
//	mob1 ~~ nas1 -- lb1 --+                     +-- a1 10.20.0.11 \ group A, rep 10.30.0.1
//	     ~~ nas2 -- lb2 --+-- LAN1 -- gw1 --+-- LAN2 -- a2 10.20.0.12 /
//	     ~~ nas3 -- lb3 --+        -- gw2 --+   +-- b1 10.20.0.21 \ group B, rep 10.30.0.2
//	mob2 (same three links)                     +-- b2 10.20.0.22 /
//
// mob1's address belongs to gw1 and mob2's to gw2; whichever LB a mobile
// uses, its packets reach its own gateway. Every test but TestNAT64 runs
// its cases over IPv4 and then over IPv6 (family_test.go): the same
// topology with the mobiles in fd00:101::/64 and fd00:102::/64, the
// servers at fd00:20::11.. and the representatives at fd00:30::1 and
// fd00:30::2; TestNAT64 has an IPv6 mobile reach the IPv4 group A. The package has no API: it is
// tests only (see the *_test.go files, each opening with its topology).
// The test binary doubles as `testbed serve` for the servers and builds
// samepathd once per run.
package gwe2e
