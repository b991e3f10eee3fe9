// Package accte2e holds the privileged end-to-end tests of the gateway's
// service authorization and proxy accounting (issue 6; SPEC R-AUTH-1,
// R-ACCT-1, R-ACCT-2): the FIG. 2 testbed of testbed/demo with samepathd
// as the three LBs and the two gateways, the real curl in the mobiles'
// namespaces, real kernel TCP on the servers, and the gateways' durable
// accounting logs read back with dp/acct.
//
//	                  +-- nas1 -- lb1 --+                  LAN2
//	mob1 (IMEI-mob1) ~+-- nas2 -- lb2 --+-- LAN1 --+-- gw1 --+--+-- a1 a2  group A, rep 10.30.0.1 (T9: web)
//	mob2 (IMEI-mob2) ~+-- nas3 -- lb3 --+          +-- gw2 --+  +-- b1 b2  group B, rep 10.30.0.2 (T9: video)
//	                                                  |   |
//	                                  LOG/gw1.acct <--+   +--> LOG/gw2.acct (JSON lines, dp/acct)
//
//	T8 (service order): IMEI-mob1 web, video; IMEI-mob2 web only.
//
// mob1's address belongs to gw1 and mob2's to gw2, so each gateway
// authorizes and accounts for its own subscriber. The package has no
// API: it is tests only (each *_test.go file opens with its topology).
// The test binary doubles as `testbed serve` for the servers and builds
// samepathd once per run. The tests need root and the curl command.
package accte2e
