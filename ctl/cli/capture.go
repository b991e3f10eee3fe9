package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"samepath/ctl/api"
)

const captureLong = `Capture frames from a samepathd's dataplane into a pcapng file (issue 18):
tcpdump on an AF_XDP interface sees nothing the pollers forward.

The daemon copies each frame the filter takes as it was received and, if it
forwarded it, as it sent it (after NAT and MAC rewriting): two packets with
the same packet ID, inbound and outbound in the flags word, and a comment
naming the worker, the port and the verdict ("forwarded to eth1/q0",
"dropped: no_flow", "refused: denied, answered to eth0/q0"). tcpdump -r and
Wireshark read the file (tshark -V or Wireshark show the comments).

The filter parts all apply to the frame as received:
  -direction up|down   up: from the mobiles' side (gateway LAN, LB ingress);
                       down: from the servers' side
  -iface NAME          received on this interface
  EXPR                 a tcpdump expression, compiled here with tcpdump -ddd
                       and run by the daemon as classic BPF
  -tuple "P S D"       PROTO SRC[:PORT] DST[:PORT] (tcp|udp|icmp|icmp6|N|*;
                       address, prefix or *; port or *), either orientation
  -drops [-reason R]   only frames the dataplane dropped or refused (for R)
At most -count frames, for at most -duration. A NATed flow's two directions
differ in addresses: filter on what both share (tcp port 80), or give both
sides (host MOBILE or host NATADDR).`

const captureExample = `  samepathctl capture -daemon http://10.99.0.31:7700 -w web.pcapng -count 50 tcp port 80
  samepathctl capture -daemon http://10.99.0.31:7700 -w - -drops -duration 30s | tcpdump -nn -r -
  samepathctl capture -daemon http://10.99.0.31:7700 -w m.pcapng -tuple "tcp 10.101.0.5 *"`

// captureSummary is what capture prints when the file is written.
type captureSummary struct {
	File   string `json:"file"`
	Frames int    `json:"frames"`
	Lost   uint64 `json:"lost"`
	End    string `json:"end"`
}

// captureCmd is `samepathctl capture`: POST /v1/capture to one samepathd.
func (a *app) captureCmd() *cobra.Command {
	var daemon, file, tcpdump string
	var req api.CaptureRequest
	duration := 10 * time.Second
	c := &cobra.Command{Use: "capture -daemon URL -w FILE|- [-direction up|down] [-iface NAME] [-tuple T] [-drops [-reason R]] [-count N] [-duration D] [EXPR...]",
		Short: "capture dataplane frames (before and after rewriting, with verdicts) into pcapng", Long: captureLong, Example: captureExample,
		Args: cobra.ArbitraryArgs}
	body := a.run(func(cx *ctx, args []string) error {
		if daemon == "" {
			return usagef("capture: -daemon URL is required")
		}
		if file == "" {
			return usagef("capture: -w FILE is required (- for standard output)")
		}
		if duration <= 0 {
			return usagef("capture: -duration must be more than 0")
		}
		req.DurationMS = duration.Milliseconds()
		if expr := strings.TrimSpace(strings.Join(args, " ")); expr != "" {
			prog, err := compileBPF(cx.c, tcpdump, expr)
			if err != nil {
				return err
			}
			req.Expr, req.BPF = expr, prog
		}
		var out io.Writer = cx.out
		var f *os.File
		if file != "-" {
			var err error
			if f, err = os.Create(file); err != nil {
				return err
			}
			out = f
		}
		res, err := cx.daemon(daemon).Capture(cx.c, req, out)
		if f != nil {
			// What arrived stays in the file, even when the capture
			// failed midway: pcapng readers take the blocks before.
			if cerr := f.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("write %s: %w", file, cerr)
			}
		}
		if err != nil {
			return err
		}
		sum := captureSummary{File: file, Frames: res.Frames, Lost: res.Lost, End: res.End}
		if file == "-" {
			// Standard output holds the file: the summary goes to stderr.
			fmt.Fprintf(cx.errw, "samepathctl capture: %d frames (%d lost), ended by %s\n", sum.Frames, sum.Lost, sum.End)
			return nil
		}
		return cx.emit(sum, func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "file\t%s\nframes\t%d\nlost\t%d\nended by\t%s\n", sum.File, sum.Frames, sum.Lost, sum.End)
		})
	})
	c.RunE = func(c *cobra.Command, args []string) error {
		// The global -timeout bounds the whole command; unless it is
		// given, a capture gets its duration and 15 s more.
		if f := c.Flag("timeout"); f == nil || !f.Changed {
			a.timeout = duration + 15*time.Second
		}
		return body(c, args)
	}
	fs := c.Flags()
	fs.StringVar(&daemon, "daemon", "", "samepathd control API URL (role gw or lb)")
	fs.StringVarP(&file, "write", "w", "", "pcapng file to write, - for standard output")
	fs.StringVar(&req.Direction, "direction", "", "up or down (default both)")
	fs.StringVar(&req.Iface, "iface", "", "only frames received on this interface")
	fs.StringVar(&req.Tuple, "tuple", "", `5-tuple "PROTO SRC[:PORT] DST[:PORT]", either orientation`)
	fs.BoolVar(&req.Drops, "drops", false, "only frames the dataplane dropped or refused")
	fs.StringVar(&req.Reason, "reason", "", "only drops of this reason (as the counters name them: no_flow, denied, ...)")
	fs.IntVar(&req.Count, "count", 100, "most frames to capture")
	fs.DurationVar(&duration, "duration", duration, "longest the capture runs")
	fs.IntVar(&req.SnapLen, "snaplen", 0, "most bytes kept of each frame (default the daemon's frame size)")
	fs.StringVar(&tcpdump, "tcpdump", "tcpdump", "tcpdump to compile EXPR with (-ddd)")
	c.RegisterFlagCompletionFunc("daemon", a.completeDaemons)
	c.RegisterFlagCompletionFunc("direction", fixed("up", "down"))
	return c
}

// compileBPF compiles a tcpdump expression for Ethernet frames into the
// classic BPF program text tcpdump -ddd writes.
func compileBPF(ctx context.Context, tcpdump, expr string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, tcpdump, "-ddd", "-y", "EN10MB", "--", expr)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		var ee *exec.Error
		if errors.As(err, &ee) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			return "", fmt.Errorf("compile filter %q: %w (install tcpdump or give -tcpdump PATH, or use -tuple)", expr, err)
		}
		return "", fmt.Errorf("compile filter %q with %s: %s", expr, tcpdump, msg)
	}
	return stdout.String(), nil
}
