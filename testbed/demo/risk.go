package demo

// The risk-balancing part of the demo (R-TCP-4, tcpproxy/risk.go): on
// the downloading mobile's gateway web-a becomes a terminate-mode HTTP
// service; mob1 downloads a body with an ETag, and a third of the way
// in the process of the server carrying it is killed by its PID. The
// terminator resumes the body from the other server of group A by a
// conditional Range request: the download completes, its SHA-256
// matches, and the service's counters show the resume.

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"syscall"
	"time"

	"samepath/ctl/api"
	"samepath/testbed/fig2"
	"samepath/testbed/servers"
	"samepath/testbed/topo"
)

// RiskDemo is what the risk-balancing part saw.
type RiskDemo struct {
	Gateway    int    // the mobile's gateway (1-based)
	Killed     string // the server whose process was killed
	KilledPID  int
	KilledAt   int64 // body bytes the mobile had then
	Bytes      int64
	ChecksumOK bool
	// Stats are web-a's risk counters on Gateway afterwards.
	Stats api.RiskStats
}

// riskDefaults turns the gateways' terminator on (ports 60000-65535,
// T5 keys below) unless the caller configured the ports.
func (o *Options) riskDefaults() {
	if o.GWNAT.TermPortMin == 0 && o.GWNAT.PortMax == 0 {
		o.GWNAT.PortMax, o.GWNAT.TermPortMin, o.GWNAT.TermPortMax = 59999, 60000, 65535
	}
}

// risk runs the part; the download's connection stays open (kept
// alive) until closeIdle, so its record ends with the session like the
// demo's others.
func (s *System) risk(ctx context.Context, o Options, mob1 netip.Addr) (rd *RiskDemo, closeIdle func(), err error) {
	closeIdle = func() {}
	p := s.TB.Plan
	mob := p.Mobiles[0]
	g := s.gatewayOf(mob1)
	if g == 0 || o.GWNAT.TermPortMin == 0 {
		return nil, closeIdle, errors.New("risk: no terminator on the mobile's gateway")
	}
	gw := s.GWs[g-1]
	svcs, err := gw.Services(ctx)
	if err != nil {
		return nil, closeIdle, err
	}
	var table api.Services
	for _, sv := range svcs.Services {
		for i := range sv.Servers {
			x := &sv.Servers[i]
			x.Healthy, x.RTTMicros, x.CPU, x.Active = nil, 0, 0, 0
		}
		sv.RiskStats = nil
		if sv.Name == "web-a" {
			sv.Mode, sv.Risk = "terminate", &api.Risk{HTTP: true}
		}
		table.Services = append(table.Services, sv)
	}
	if err := gw.SetServices(ctx, table); err != nil {
		return nil, closeIdle, fmt.Errorf("risk: web-a to terminate: %w", err)
	}
	url := fmt.Sprintf("http://%s/bytes/%d?validator=etag&rate=%d", netip.AddrPortFrom(p.Groups[0].VIPv4, fig2.HTTPPort), o.Size, o.Rate)
	fmt.Fprintf(o.Out, "== risk balancing: web-a terminated on gw%d; %s downloads %s, its server is killed a third of the way\n", g, mob.Name, url)
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return topo.Dial(ctx, mob.NS, network, addr)
	}}
	closeIdle = tr.CloseIdleConnections
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, closeIdle, fmt.Errorf("risk download: %w", err)
	}
	defer resp.Body.Close()
	rd = &RiskDemo{Gateway: g}
	h := sha256.New()
	buf := make([]byte, 32<<10)
	var killed *fig2.Server
	for {
		n, rerr := resp.Body.Read(buf)
		h.Write(buf[:n])
		rd.Bytes += int64(n)
		if killed == nil && rd.Bytes >= o.Size/3 {
			if killed, err = s.killServerOf(ctx, gw, mob1, rd); err != nil {
				return rd, closeIdle, err
			}
			fmt.Fprintf(o.Out, "   %d bytes: killed %s (pid %d)\n", rd.Bytes, rd.Killed, rd.KilledPID)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rd, closeIdle, fmt.Errorf("risk download broke after %d bytes: %w", rd.Bytes, rerr)
		}
	}
	rd.ChecksumOK = rd.Bytes == o.Size && [32]byte(h.Sum(nil)) == servers.BytesSHA256(o.Size)
	if killed != nil {
		if err := s.restartServer(ctx, o, *killed); err != nil {
			return rd, closeIdle, err
		}
	}
	if svcs, err = gw.Services(ctx); err != nil {
		return rd, closeIdle, err
	}
	for _, sv := range svcs.Services {
		if sv.Name == "web-a" && sv.RiskStats != nil {
			rd.Stats = *sv.RiskStats
		}
	}
	fmt.Fprintf(o.Out, "   download complete: %d bytes, SHA-256 %s; web-a on gw%d: failovers %d, resumes %d, aborts %v\n",
		rd.Bytes, map[bool]string{true: "matches", false: "MISMATCH"}[rd.ChecksumOK], g, rd.Stats.Failovers, rd.Stats.Resumes, rd.Stats.Aborts)
	return rd, closeIdle, nil
}

// killServerOf kills the process of the server of the mobile's flow to
// group A.
func (s *System) killServerOf(ctx context.Context, gw *api.Client, mob netip.Addr, rd *RiskDemo) (*fig2.Server, error) {
	fs, err := gw.Flows(ctx, 100000)
	if err != nil {
		return nil, err
	}
	p := s.TB.Plan
	for _, f := range fs.Flows {
		m, err1 := netip.ParseAddrPort(f.Mobile)
		sv, err2 := netip.ParseAddrPort(f.Server)
		// The live one: the demo's earlier flows to web-a linger closed.
		if err1 != nil || err2 != nil || m.Addr() != mob || f.Service != "web-a" || f.State != "established" {
			continue
		}
		for i := range p.Servers {
			srv := &p.Servers[i]
			if srv.LAN.IPv4.Addr() != sv.Addr().Unmap() {
				continue
			}
			d := s.TB.Daemon(srv.Name)
			if d == nil {
				return nil, fmt.Errorf("risk: no process for server %s", srv.Name)
			}
			rd.Killed, rd.KilledPID, rd.KilledAt = srv.Name, d.Cmd.Process.Pid, rd.Bytes
			if err := syscall.Kill(d.Cmd.Process.Pid, syscall.SIGKILL); err != nil {
				return nil, fmt.Errorf("risk: kill %s: %w", srv.Name, err)
			}
			<-d.Done()
			return srv, nil
		}
	}
	return nil, errors.New("risk: no flow of the download to a server of group A")
}

// restartServer starts a killed server again and waits until it listens.
func (s *System) restartServer(ctx context.Context, o Options, srv fig2.Server) error {
	argv := o.ServeArgv
	if argv == nil {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		argv = []string{exe, "serve"}
	}
	if _, err := s.TB.StartDaemon(srv.NS, srv.Name, append(append([]string(nil), argv...), fig2.ServeFlags(srv)...)...); err != nil {
		return fmt.Errorf("risk: restart %s: %w", srv.Name, err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if c, err := topo.Dial(ctx, srv.NS, "tcp", fmt.Sprintf("127.0.0.1:%d", srv.HTTP)); err == nil {
			c.Close()
			return nil
		}
	}
	return fmt.Errorf("risk: server %s does not listen again", srv.Name)
}
