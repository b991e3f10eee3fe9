package cli

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"samepath/dp"
	"samepath/dp/daemon"
	"samepath/dp/dptest"
	"samepath/ring/memport"

	"samepath/testbed/privtest"
)

// natPipe forwards up frames (port 0) to port 1 with their source
// address rewritten to 10.20.0.101, as a NAT would, and drops down
// frames (port 1) as no_flow.
type natPipe struct{}

func (natPipe) Process(in int, pkts []dp.Packet) {
	for i := range pkts {
		if in == 1 {
			pkts[i].Out, pkts[i].Drop = -1, dp.ReasonNoFlow
			continue
		}
		copy(pkts[i].Data[14+12:], []byte{10, 20, 0, 101})
		pkts[i].Out = 1
	}
}

// captureRig is samepathd's capture endpoint over a real worker on
// memory ports; the test's goroutine is the worker.
type captureRig struct {
	w     *dp.Worker
	ports [2]*memport.Port
	url   string
}

func newCaptureRig(t *testing.T) *captureRig {
	u, _ := memport.NewUmem(1024)
	a, _ := memport.New(memport.DefaultConfig("eth0/q0"), u)
	b, _ := memport.New(memport.DefaultConfig("eth1/q0"), u)
	w, err := dp.NewWorker(dp.DefaultWorkerConfig(), []dp.Port{a, b}, natPipe{})
	if err != nil {
		t.Fatal(err)
	}
	v1 := http.NewServeMux()
	daemon.CaptureRoutes(v1, []*dp.Worker{w}, 2048)
	hs := httptest.NewServer(v1)
	t.Cleanup(hs.Close)
	return &captureRig{w: w, ports: [2]*memport.Port{a, b}, url: hs.URL}
}

var (
	capMob = netip.MustParseAddr("10.101.0.5")
	capRep = netip.MustParseAddr("10.30.0.1")
)

// run runs samepathctl with args while the worker forwards a DNS query
// up and a stray frame down every millisecond.
func (r *captureRig) run(args ...string) (int, string, string) {
	mac := dptest.MAC("02:00:00:00:00:01")
	query := dptest.Frame().Eth(mac, mac).IPv4(capMob, capRep).UDP(5353, 53).Payload([]byte("q")).Bytes()
	web := dptest.Frame().Eth(mac, mac).IPv4(capMob, capRep).TCP(40000, 80).Bytes()
	stray := dptest.Frame().Eth(mac, mac).IPv4(capRep, capMob).UDP(53, 9).Bytes()
	var out, errb bytes.Buffer
	done := make(chan int)
	go func() { done <- Main(args, &out, &errb, Defaults{}) }()
	for {
		select {
		case rc := <-done:
			return rc, out.String(), errb.String()
		default:
		}
		r.ports[0].Inject(query)
		r.ports[0].Inject(web)
		r.ports[1].Inject(stray)
		r.w.Poll()
		r.ports[1].TakeAll()
		time.Sleep(time.Millisecond)
	}
}

func readPcapng(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	var comments []string
	for {
		_, _, opts, err := rd.ReadPacketDataWithOptions()
		if errors.Is(err, io.EOF) {
			return comments
		}
		if err != nil {
			t.Fatal(err)
		}
		comments = append(comments, strings.Join(opts.Comments, "|"))
	}
}

func TestCaptureTuple(t *testing.T) {
	r := newCaptureRig(t)
	file := filepath.Join(t.TempDir(), "c.pcapng")
	rc, out, errs := r.run("capture", "-daemon", r.url, "-w", file, "-count", "2", "-tuple", "udp * *:53", "-direction", "up")
	if rc != 0 {
		t.Fatalf("exit %d: %s", rc, errs)
	}
	if want := "file      " + file + "\nframes    2\nlost      0\nended by  count\n"; out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	got := readPcapng(t, file)
	want := "worker 0 rx eth0/q0, before rewriting: forwarded to eth1/q0"
	if len(got) != 4 || got[0] != want || got[2] != want {
		t.Errorf("comments %q", got)
	}
}

// TestCaptureExpr compiles a tcpdump expression (tcpdump -ddd) and takes
// the drops it selects; tcpdump -r reads the file.
func TestCaptureExpr(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		privtest.Missing(t, "tcpdump (to compile the expression)")
	}
	r := newCaptureRig(t)
	file := filepath.Join(t.TempDir(), "c.pcapng")
	rc, out, errs := r.run("-o", "json", "capture", "-daemon", r.url, "-w", file, "-count", "3", "-drops", "-reason", "no_flow", "udp", "and", "src", "port", "53")
	if rc != 0 {
		t.Fatalf("exit %d: %s", rc, errs)
	}
	if !strings.Contains(out, `"frames": 3`) || !strings.Contains(out, `"end": "count"`) {
		t.Errorf("output %s", out)
	}
	for _, c := range readPcapng(t, file) {
		if c != "worker 0 rx eth1/q0, before rewriting: dropped: no_flow" {
			t.Errorf("comment %q", c)
		}
	}
	tr, err := exec.Command("tcpdump", "-nn", "-r", file).CombinedOutput()
	if err != nil || strings.Count(string(tr), "IP 10.30.0.1.53 > 10.101.0.5.9: ") != 3 {
		t.Errorf("tcpdump -r: %v\n%s", err, tr)
	}
}

// TestCaptureStdout: -w - writes the file on standard output, the
// summary on standard error.
func TestCaptureStdout(t *testing.T) {
	r := newCaptureRig(t)
	rc, out, errs := r.run("capture", "-daemon", r.url, "-w", "-", "-count", "1", "-iface", "eth0", "-tuple", "tcp * *")
	if rc != 0 {
		t.Fatalf("exit %d: %s", rc, errs)
	}
	if errs != "samepathctl capture: 1 frames (0 lost), ended by count\n" {
		t.Errorf("stderr %q", errs)
	}
	rd, err := pcapgo.NewNgReader(strings.NewReader(out), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	data, _, err := rd.ReadPacketData()
	if err != nil || len(data) < 38 || data[23] != 6 {
		t.Errorf("first packet %x, %v: want the TCP frame", data, err)
	}
}

func TestCaptureErrors(t *testing.T) {
	r := newCaptureRig(t)
	file := filepath.Join(t.TempDir(), "c.pcapng")
	for _, tc := range []struct {
		args []string
		rc   int
		want string
	}{
		{[]string{"capture", "-w", file}, 2, "-daemon URL is required"},
		{[]string{"capture", "-daemon", r.url}, 2, "-w FILE is required"},
		{[]string{"capture", "-daemon", r.url, "-w", file, "-duration", "0s"}, 2, "-duration must be more than 0"},
		{[]string{"capture", "-daemon", r.url, "-w", file, "-direction", "left"}, 1, `400 Bad Request: direction "left"`},
		{[]string{"capture", "-daemon", r.url, "-w", file, "-tcpdump", "/nonexistent/tcpdump", "tcp"}, 1, "install tcpdump or give -tcpdump PATH"},
	} {
		var out, errb bytes.Buffer
		rc := Main(tc.args, &out, &errb, Defaults{})
		if rc != tc.rc || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d with %q", tc.args, rc, errb.String(), tc.rc, tc.want)
		}
	}
	if _, err := exec.LookPath("tcpdump"); err == nil {
		var out, errb bytes.Buffer
		rc := Main([]string{"capture", "-daemon", r.url, "-w", file, "tcp", "prot", "80"}, &out, &errb, Defaults{})
		if rc != 1 || !strings.Contains(errb.String(), `compile filter "tcp prot 80" with tcpdump: tcpdump: `) || !strings.Contains(errb.String(), "syntax error") {
			t.Errorf("bad expression: exit %d, stderr %q", rc, errb.String())
		}
	}
}
