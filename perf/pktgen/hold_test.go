package pktgen

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"samepath/perf/internal/nsthread"
	"samepath/testbed/privtest"
)

func TestHoldOwner(t *testing.T) {
	for name, want := range map[string]int{
		"spgh1a2b-3": 0x1a2b, "spgh1a2b-3p": 0x1a2b, "spgh400000-999": 0x400000,
		"spgh-3": 0, "spgh1a2b": 0, "spghzz-1": 0, "spgh0-1": 0, "eth0": 0, "spg1-1": 0,
	} {
		pid, ok := holdOwner(name)
		if ok != (want != 0) || pid != want {
			t.Errorf("holdOwner(%q) = %d, %v; want %d", name, pid, ok, want)
		}
	}
}

// holdLinks lists the hold pairs' ends in namespace ns.
func holdLinks(t *testing.T, ns string) []string {
	t.Helper()
	var names []string
	err := nsthread.Run(ns, -1, func() error {
		links, err := netlink.LinkList()
		for _, l := range links {
			if strings.HasPrefix(l.Attrs().Name, holdPrefix) {
				names = append(names, l.Attrs().Name)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// A live run holds its program in the dispatcher through a pair that lives
// exactly as long as the run; pairs of dead processes are cleaned.
func TestDispatcherHold(t *testing.T) {
	privtest.Require(t)
	gen, _ := pair(t)
	// A pair left by a process that no longer exists: the highest pid
	// the default pid_max allows that is not running.
	dead := 0x3fffff
	for unix.Kill(dead, 0) != unix.ESRCH {
		dead--
	}
	stale := fmt.Sprintf("%s%x-1", holdPrefix, dead)
	err := nsthread.Run(gen, -1, func() error {
		la := netlink.NewLinkAttrs()
		la.Name = stale
		return netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: stale + "p"})
	})
	if err != nil {
		t.Fatal(err)
	}

	cfg := DefaultTxConfig()
	cfg.Netns, cfg.Iface, cfg.Frame.DstMAC = gen, "g0", macB
	cfg.Frame.SrcIP, cfg.Frame.DstIP = netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.1.0.1")
	cfg.Rate, cfg.Duration = 1e4, time.Second
	done := make(chan error, 1)
	go func() {
		_, err := RunTx(context.Background(), cfg)
		done <- err
	}()
	own := fmt.Sprintf("%s%x-", holdPrefix, os.Getpid())
	var seen []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if seen = holdLinks(t, gen); len(seen) == 2 && strings.HasPrefix(seen[0], own) {
			break
		}
	}
	if len(seen) != 2 || !strings.HasPrefix(seen[0], own) || !strings.HasPrefix(seen[1], own) {
		t.Errorf("during the run: hold links %v, want this process's pair only", seen)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if left := holdLinks(t, gen); len(left) != 0 {
		t.Fatalf("after the run: hold links %v remain", left)
	}
}
