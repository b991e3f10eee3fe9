// Command samepathctl shows and changes samepath's tables, states and
// counters (R-CTL-1). Run samepathctl -h.
package main

import (
	"os"

	"samepath/ctl/cli"
)

func main() {
	d := cli.Defaults{Control: "http://127.0.0.1:9190", TokenFile: os.Getenv("SAMEPATH_TOKEN_FILE")}
	if v := os.Getenv("SAMEPATH_CONTROL"); v != "" {
		d.Control = v
	}
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr, d))
}
