package fig2

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"samepath/testbed/servers"
)

// TestMain lets the test binary run as the servers the testbed starts
// inside its namespaces.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		os.Exit(servers.Main(os.Args[2:], os.Stderr))
	}
	goleak.VerifyTestMain(m)
}
