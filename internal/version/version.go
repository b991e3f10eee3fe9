// Package version is the one version string of every samepath binary
// (--version) and of the samepath_build_info metric.
//
// Version is set at link time:
//
//	go build -ldflags "-X samepath/internal/version.Version=v1.2.0" ./cmd/...
//
// Without it Get falls back to the module's build info (the module
// version, or the VCS revision when the build recorded one) and then to
// "devel".
package version

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Version is the release version; empty unless set by -ldflags -X. It is
// a variable only because -X can set nothing else; nothing writes it at
// run time.
var Version string

// Get returns the version: Version, else the build info's, else "devel".
func Get() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	return fromBuildInfo(bi)
}

func fromBuildInfo(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "(devel)" {
		v = ""
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	switch {
	case v != "":
		return v
	case rev != "":
		return "devel-" + rev[:min(12, len(rev))] + dirty
	}
	return "devel"
}

// GoVersion is the Go release the binary was built with.
func GoVersion() string { return runtime.Version() }

// String is what --version prints: "PROG VERSION (GOVERSION)".
func String(prog string) string {
	return fmt.Sprintf("%s %s (%s)", prog, Get(), GoVersion())
}

// AddFlag adds -version (also read as --version) to fs: it prints
// String(prog) to out and calls exit(0), before any other flag is checked.
// The mains pass os.Exit.
func AddFlag(fs *flag.FlagSet, prog string, out io.Writer, exit func(int)) {
	fs.BoolFunc("version", "print the version and exit", func(string) error {
		fmt.Fprintln(out, String(prog))
		exit(0)
		return nil
	})
}
