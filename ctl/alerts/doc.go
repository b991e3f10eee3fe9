// Package alerts holds samepath's Prometheus alerting rules
// (samepath.rules.yml) and their unit tests (samepath.rules_test.yml,
// run by promtool test rules). The Go package has no code: its test runs
// `promtool check rules` and `promtool test rules`, so `go test` and
// `make test` check the rules against the metric names the daemons
// export. Rules holds the file for tools that embed it.
package alerts

import _ "embed"

// Rules is samepath.rules.yml.
//
//go:embed samepath.rules.yml
var Rules []byte
