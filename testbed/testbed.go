package testbed

import (
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"samepath/testbed/fig2"
	"samepath/testbed/topo"
)

// Family starts every run prefix made by NewPrefix; Clean removes everything
// that starts with it.
const Family = "sptb"

// NewPrefix returns Family + 4 random base-36 characters.
func NewPrefix() string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 4)
	rand.Read(b)
	for i := range b {
		b[i] = digits[int(b[i])%len(digits)]
	}
	return Family + string(b)
}

// Run describes one run found on the machine.
type Run struct {
	Prefix     string   `json:"prefix"`
	Topology   string   `json:"topology"` // "" when there is no state file (leftovers)
	Namespaces []string `json:"namespaces"`
	Processes  int      `json:"processes"`
}

// List returns the runs with a state file in stateDir and the leftover
// namespaces of the family without one, by prefix.
func List(stateDir string) ([]Run, error) { return list(stateDir, Family) }

func list(stateDir, family string) ([]Run, error) {
	byPrefix := map[string]*Run{}
	get := func(p string) *Run {
		if r, ok := byPrefix[p]; ok {
			return r
		}
		r := &Run{Prefix: p}
		byPrefix[p] = r
		return r
	}
	runs, err := fig2.Runs(stateDir)
	if err != nil {
		return nil, err
	}
	for _, p := range runs {
		if strings.HasPrefix(p, family) {
			get(p).Topology = "fig2"
		}
	}
	ns, err := topo.ListNetns(family)
	if err != nil {
		return nil, err
	}
	for _, n := range ns {
		i := strings.IndexByte(n, '-')
		if i < 0 {
			continue
		}
		r := get(n[:i])
		r.Namespaces = append(r.Namespaces, n)
	}
	var out []Run
	for _, r := range byPrefix {
		ps, err := topo.Procs(r.Prefix + "-")
		if err != nil {
			return nil, err
		}
		r.Processes = len(ps)
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Prefix < out[j].Prefix })
	return out, nil
}

// Clean removes every run of the family: processes in its namespaces, the
// namespaces, state files and logs.
func Clean(stateDir string) error { return clean(stateDir, Family) }

func clean(stateDir, family string) error {
	runs, err := list(stateDir, family)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range runs {
		if err := fig2.DownPrefix(stateDir, r.Prefix); err != nil {
			errs = append(errs, fmt.Errorf("clean %s: %w", r.Prefix, err))
		}
	}
	// A namespace whose name has no '-' after the family is ours too.
	if err := topo.KillProcs(family, 2*time.Second); err != nil {
		errs = append(errs, err)
	}
	left, _ := topo.ListNetns(family)
	for _, n := range left {
		if err := topo.DeleteNetns(n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Resolve finds the run a user means by name: a prefix with a state file, or
// a topology name ("fig2") when exactly one run of it exists, or "" when
// exactly one run exists at all.
func Resolve(stateDir, name string) (string, error) {
	runs, err := fig2.Runs(stateDir)
	if err != nil {
		return "", err
	}
	for _, r := range runs {
		if r == name {
			return r, nil
		}
	}
	if name == "" || name == "fig2" {
		switch len(runs) {
		case 1:
			return runs[0], nil
		case 0:
			return "", errors.New("no run: start one with `testbed up fig2`")
		default:
			return "", fmt.Errorf("%d runs (%s): name one", len(runs), strings.Join(runs, ", "))
		}
	}
	return "", fmt.Errorf("no run %q", name)
}
