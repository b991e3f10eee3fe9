// Package e2e holds the testbed's end-to-end tests: whole topologies built
// in namespaces with real servers and moving mobiles. Each test file opens
// with a diagram of its topology. The test binary doubles as `testbed serve`
// and `testbed linkem` (TestMain), so the tests need no prebuilt binary.
package e2e
