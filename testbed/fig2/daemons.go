package fig2

import "strconv"

// Daemon returns the live process this testbed started under name (a
// server's name, "samepathd-gw1"...), or nil: the handle a test kills
// by PID.
func (tb *Testbed) Daemon(name string) *Daemon {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for i := len(tb.children) - 1; i >= 0; i-- {
		d := tb.children[i]
		if d.Name != name {
			continue
		}
		select {
		case <-d.done:
			continue
		default:
			return d
		}
	}
	return nil
}

// ServeFlags are the flags Up gives server s's `testbed serve`, to
// start it again after a test killed it (StartDaemon(s.NS, s.Name,
// append(serveArgv, ServeFlags(s)...)...)).
func ServeFlags(s Server) []string {
	return []string{"--name", s.Name, "--http", ":" + strconv.Itoa(s.HTTP), "--tcp-echo", ":" + strconv.Itoa(s.Echo),
		"--udp", ":" + strconv.Itoa(s.Echo), "--dns", ":" + strconv.Itoa(s.DNS),
		"--v4", s.LAN.IPv4.Addr().String(), "--v6", s.LAN.IPv6.Addr().String()}
}
