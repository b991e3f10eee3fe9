package e2e

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"samepath/testbed/linkem"
	"samepath/testbed/servers"
)

// TestMain lets the test binary run as the servers and link emulators the
// topology starts inside its namespaces.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "serve":
			os.Exit(servers.Main(os.Args[2:], os.Stderr))
		case "linkem":
			os.Exit(linkem.Main(os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	goleak.VerifyTestMain(m)
}

// selfArgv returns the argv that runs this test binary as SUB.
func selfArgv(t *testing.T, sub string) []string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{exe, sub}
}
