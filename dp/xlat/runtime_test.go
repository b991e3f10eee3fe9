package xlat_test

import (
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"samepath/dp/dptest"
	"samepath/dp/header"
	"samepath/dp/xlat"
)

// TestRuntimeSet: a new configuration applies to the next packet of
// every translator of the Runtime; an invalid one changes nothing and
// names its key.
func TestRuntimeSet(t *testing.T) {
	c := xlat.DefaultConfig()
	c.IPv4Address, c.IPv6Address = netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	rt, err := xlat.NewRuntime(c)
	if err != nil {
		t.Fatal(err)
	}
	tr := rt.NewTranslator()
	in := dptest.Frame().IPv4(netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("203.0.113.9")).UDP(1, 2).Payload([]byte("x")).Bytes()
	src := func() netip.Addr {
		t.Helper()
		var d header.Decoded
		if header.Decode(in, &d) != header.OK {
			t.Fatal("decode")
		}
		out := make([]byte, xlat.OutLen(len(in)))
		var r xlat.Result
		if o := tr.Translate(in, &d, out, &r); !o.Translated() {
			t.Fatalf("outcome %v", o)
		}
		return netip.AddrFrom16([16]byte(out[r.Pkts[0].Off+14+8:]))
	}
	if got, want := src(), netip.MustParseAddr("64:ff9b::198.51.100.7"); got != want {
		t.Fatalf("source %v, want %v", got, want)
	}
	if err := rt.Update(func(c *xlat.Config) error { c.Pool6 = netip.MustParsePrefix("2001:db8:64::/96"); return nil }); err != nil {
		t.Fatal(err)
	}
	if got, want := src(), netip.MustParseAddr("2001:db8:64::198.51.100.7"); got != want {
		t.Errorf("after Update: source %v, want %v", got, want)
	}
	if tr.Pool6() != netip.MustParsePrefix("2001:db8:64::/96") || rt.Config().Pool6 != tr.Pool6() {
		t.Errorf("Pool6 %v, Config %v", tr.Pool6(), rt.Config().Pool6)
	}
	err = rt.Update(func(c *xlat.Config) error { c.LowestIPv6MTU = 1000; return nil })
	if !errors.Is(err, xlat.ErrConfig) || !strings.Contains(err.Error(), "lowest_ipv6_mtu") {
		t.Errorf("bad lowest MTU: %v, want an ErrConfig naming lowest_ipv6_mtu", err)
	}
	if rt.Config().LowestIPv6MTU != 1280 {
		t.Errorf("a refused config changed the runtime: %d", rt.Config().LowestIPv6MTU)
	}
}

// TestRuntimeConcurrent: Set while a worker translates (go test -race).
func TestRuntimeConcurrent(t *testing.T) {
	c := xlat.DefaultConfig()
	c.IPv4Address, c.IPv6Address = netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	rt, err := xlat.NewRuntime(c)
	if err != nil {
		t.Fatal(err)
	}
	tr := rt.NewTranslator()
	in := dptest.Frame().IPv4(netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("203.0.113.9")).UDP(1, 2).Bytes()
	var d header.Decoded
	header.Decode(in, &d)
	out := make([]byte, xlat.OutLen(len(in)))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			p := "64:ff9b::/96"
			if i%2 == 1 {
				p = "2001:db8:64::/96"
			}
			if err := rt.Update(func(c *xlat.Config) error { c.Pool6 = netip.MustParsePrefix(p); return nil }); err != nil {
				t.Error(err)
			}
		}
	}()
	var r xlat.Result
	for i := 0; i < 2000; i++ {
		tr.Translate(in, &d, out, &r)
		tr.Publish()
	}
	wg.Wait()
	if n := tr.Published()[xlat.Translated46]; n != 2000 {
		t.Errorf("published translated_46 %d, want 2000", n)
	}
}

// TestPublish: Published shows Counters as of the latest Publish only.
func TestPublish(t *testing.T) {
	c := xlat.DefaultConfig()
	c.IPv4Address, c.IPv6Address = netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	tr, err := xlat.New(c)
	if err != nil {
		t.Fatal(err)
	}
	in := dptest.Frame().IPv4(netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("203.0.113.9")).TTL(1).UDP(1, 2).Bytes()
	var d header.Decoded
	header.Decode(in, &d)
	out := make([]byte, xlat.OutLen(len(in)))
	var r xlat.Result
	tr.Translate(in, &d, out, &r)
	if n := tr.Published()[xlat.AnswerTimeExceeded]; n != 0 {
		t.Errorf("before Publish: %d", n)
	}
	tr.Publish()
	if p := tr.Published(); p[xlat.AnswerTimeExceeded] != 1 || p != tr.Counters {
		t.Errorf("after Publish: %v, want %v", p, tr.Counters)
	}
}
