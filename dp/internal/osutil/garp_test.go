package osutil

import (
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestGARPFrame: gopacket decodes the frame as a broadcast ARP request
// whose sender and target address are both the announced one.
func TestGARPFrame(t *testing.T) {
	mac := [6]byte{2, 0, 0, 0, 0x20, 1}
	ip := netip.MustParseAddr("10.20.0.101")
	p := gopacket.NewPacket(GARPFrame(mac, ip), layers.LayerTypeEthernet, gopacket.Default)
	a, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP)
	if !ok {
		t.Fatalf("no arp layer: %v", p)
	}
	e := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if e.DstMAC.String() != "ff:ff:ff:ff:ff:ff" || e.SrcMAC.String() != "02:00:00:00:20:01" {
		t.Fatalf("ethernet %v -> %v", e.SrcMAC, e.DstMAC)
	}
	if a.Operation != layers.ARPRequest || netip.AddrFrom4([4]byte(a.SourceProtAddress)) != ip ||
		netip.AddrFrom4([4]byte(a.DstProtAddress)) != ip || [6]byte(a.SourceHwAddress) != mac {
		t.Fatalf("arp %+v", a)
	}
	if err := SendGARP(1, mac, netip.MustParseAddr("fd00::1")); err == nil {
		t.Fatal("SendGARP accepted an ipv6 address")
	}
}
