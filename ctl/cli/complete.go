package cli

import (
	"sort"
	"time"

	"github.com/spf13/cobra"

	"samepath/ctl/aaa"
	"samepath/ctl/control"
	"samepath/ctl/session"
)

// Shell completion (samepathctl completion bash|zsh|fish): cobra's
// scripts call `samepathctl __complete ARGS...`, which runs the functions
// here. They ask the live APIs (the -control, -token-file, -gw given on
// the line being completed) for gateway names, users, session ids,
// services and servers; an API that does not answer within
// completeTimeout completes nothing.

const completeTimeout = 3 * time.Second

// fixed completes a fixed set of words.
func fixed(words ...string) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return words, cobra.ShellCompDirectiveNoFileComp
	}
}

// complete runs list against the APIs and completes its answer, sorted.
func (a *app) complete(list func(cx *ctx) ([]string, error)) ([]cobra.Completion, cobra.ShellCompDirective) {
	cx, err := a.newCtx(nil, completeTimeout)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveError
	}
	defer cx.cancel()
	out, err := list(cx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveError
	}
	sort.Strings(out)
	return out, cobra.ShellCompDirectiveNoFileComp
}

// firstArg completes only the first positional argument with list.
func (a *app) firstArg(args []string, list func(cx *ctx) ([]string, error)) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return a.complete(list)
}

func (a *app) completeGateways(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return a.firstArg(args, func(cx *ctx) ([]string, error) {
		var gs []aaa.Gateway
		var out []string
		err := cx.get("/v1/gateways", &gs)
		for _, g := range gs {
			out = append(out, g.Name)
		}
		return out, err
	})
}

func (a *app) completeMACs(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return a.complete(func(cx *ctx) ([]string, error) {
		var gs []aaa.Gateway
		var out []string
		err := cx.get("/v1/gateways", &gs)
		for _, g := range gs {
			if g.MAC != "" {
				out = append(out, g.MAC)
			}
		}
		return out, err
	})
}

func (a *app) completeUsers(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return a.firstArg(args, func(cx *ctx) ([]string, error) {
		var us []control.UserView
		var out []string
		err := cx.get("/v1/users", &us)
		for _, u := range us {
			out = append(out, u.ID)
		}
		return out, err
	})
}

func (a *app) completeSessions(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return a.firstArg(args, func(cx *ctx) ([]string, error) {
		var ss []session.Session
		var out []string
		err := cx.get("/v1/sessions", &ss)
		for _, s := range ss {
			out = append(out, s.ID)
		}
		return out, err
	})
}

// completeGWAPIs completes -gw: all, or a gateway API of T1.
func (a *app) completeGWAPIs(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return a.complete(func(cx *ctx) ([]string, error) {
		var gs []aaa.Gateway
		out := []string{"all"}
		err := cx.get("/v1/gateways", &gs)
		for _, g := range gs {
			if g.API != "" {
				out = append(out, g.API)
			}
		}
		return out, err
	})
}

// completeLBs completes -lb: all, or an LB API of the control process.
func (a *app) completeLBs(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return a.complete(func(cx *ctx) ([]string, error) {
		var ls []control.LBInfo
		out := []string{"all"}
		err := cx.get("/v1/lbs", &ls)
		for _, l := range ls {
			out = append(out, l.API)
		}
		return out, err
	})
}

// completeDaemons completes -daemon: every LB and gateway API the control
// process knows.
func (a *app) completeDaemons(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return a.complete(func(cx *ctx) ([]string, error) {
		var ls []control.LBInfo
		var gs []aaa.Gateway
		var out []string
		if err := cx.get("/v1/lbs", &ls); err != nil {
			return nil, err
		}
		err := cx.get("/v1/gateways", &gs)
		for _, l := range ls {
			out = append(out, l.API)
		}
		for _, g := range gs {
			if g.API != "" {
				out = append(out, g.API)
			}
		}
		return out, err
	})
}

// completeServices completes the services of the gateways of -gw (all:
// every gateway's, each once), or with service set that service's actual
// servers.
func (a *app) completeServices(gw, service string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return a.complete(func(cx *ctx) ([]string, error) {
		targets, err := cx.gateways(gw)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		var out []string
		for _, t := range targets {
			s, err := t.C.Services(cx.c)
			if err != nil {
				continue // a gateway that does not answer adds nothing
			}
			for _, sv := range s.Services {
				if service == "" {
					if !seen[sv.Name] {
						seen[sv.Name] = true
						out = append(out, sv.Name)
					}
					continue
				}
				if sv.Name != service {
					continue
				}
				for _, sr := range sv.Servers {
					if !seen[sr.Addr] {
						seen[sr.Addr] = true
						out = append(out, sr.Addr)
					}
				}
			}
		}
		return out, nil
	})
}
