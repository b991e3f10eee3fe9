package servers

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/signal"
	"syscall"
	"time"
)

// Config says which services to run. An empty address turns a service off.
type Config struct {
	Name    string // what GET / and DNS TXT answer
	HTTP    string // e.g. ":80"
	TCPEcho string // e.g. ":7"
	UDPEcho string // e.g. ":7"
	DNS     string // e.g. ":53"
	Dir     string // directory served under /file/
	V4, V6  netip.Addr
}

// Validate checks c.
func (c Config) Validate() error {
	if c.HTTP == "" && c.TCPEcho == "" && c.UDPEcho == "" && c.DNS == "" {
		return errors.New("no service to run: give at least one of --http, --tcp-echo, --udp, --dns")
	}
	return nil
}

// Run serves until ctx is done, then closes every listener.
func Run(ctx context.Context, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	var closers []io.Closer
	errc := make(chan error, 4)
	defer func() {
		for _, cl := range closers {
			cl.Close()
		}
	}()
	if c.HTTP != "" {
		l, err := net.Listen("tcp", c.HTTP)
		if err != nil {
			return fmt.Errorf("http listen %s: %w", c.HTTP, err)
		}
		srv := &http.Server{Handler: HTTPHandler(c.Name, c.Dir), ReadHeaderTimeout: 10 * time.Second}
		closers = append(closers, srv)
		go func() {
			if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("http: %w", err)
			}
		}()
	}
	if c.TCPEcho != "" {
		l, err := net.Listen("tcp", c.TCPEcho)
		if err != nil {
			return fmt.Errorf("tcp echo listen %s: %w", c.TCPEcho, err)
		}
		closers = append(closers, l)
		go func() {
			if err := ServeTCPEcho(l); err != nil {
				errc <- fmt.Errorf("tcp echo: %w", err)
			}
		}()
	}
	if c.UDPEcho != "" {
		pc, err := net.ListenPacket("udp", c.UDPEcho)
		if err != nil {
			return fmt.Errorf("udp echo listen %s: %w", c.UDPEcho, err)
		}
		closers = append(closers, pc)
		go func() {
			if err := ServeEcho(pc); err != nil {
				errc <- fmt.Errorf("udp echo: %w", err)
			}
		}()
	}
	if c.DNS != "" {
		pc, err := net.ListenPacket("udp", c.DNS)
		if err != nil {
			return fmt.Errorf("dns listen %s: %w", c.DNS, err)
		}
		closers = append(closers, pc)
		d := DNS{Name: c.Name, V4: c.V4, V6: c.V6}
		go func() {
			if err := d.Serve(pc); err != nil {
				errc <- fmt.Errorf("dns: %w", err)
			}
		}()
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

// Main is `testbed serve ARGS`: it parses args, serves until SIGTERM or
// SIGINT, and returns the exit status.
func Main(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c Config
	var v4, v6 string
	fs.StringVar(&c.Name, "name", "server", "name answered by GET / and DNS TXT")
	fs.StringVar(&c.HTTP, "http", "", "HTTP listen address (e.g. :80)")
	fs.StringVar(&c.TCPEcho, "tcp-echo", "", "TCP echo listen address (e.g. :7)")
	fs.StringVar(&c.UDPEcho, "udp", "", "UDP echo listen address (e.g. :7)")
	fs.StringVar(&c.DNS, "dns", "", "DNS-like UDP listen address (e.g. :53)")
	fs.StringVar(&c.Dir, "dir", "", "directory served under /file/NAME")
	fs.StringVar(&v4, "v4", "", "IPv4 address answered to A queries")
	fs.StringVar(&v6, "v6", "", "IPv6 address answered to AAAA queries")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: testbed serve [flags]\n\nexample (inside a server namespace):\n"+
			"  testbed serve --name a1 --http :80 --tcp-echo :7 --udp :7 --dns :53 --v4 10.20.0.11\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	for _, p := range []struct {
		s string
		a *netip.Addr
	}{{v4, &c.V4}, {v6, &c.V6}} {
		if p.s == "" {
			continue
		}
		a, err := netip.ParseAddr(p.s)
		if err != nil {
			fmt.Fprintf(stderr, "serve: %v\n", err)
			return 2
		}
		*p.a = a
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := Run(ctx, c); err != nil {
		fmt.Fprintf(stderr, "serve: %v\n", err)
		return 1
	}
	return 0
}
