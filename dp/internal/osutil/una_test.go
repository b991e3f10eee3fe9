package osutil

import (
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestUnsolicitedNAFrame: gopacket decodes the frame as an all-nodes
// Neighbor Advertisement with Override, the announced target and mac as
// its target link-layer address, hop limit 255 and a valid checksum.
func TestUnsolicitedNAFrame(t *testing.T) {
	mac := [6]byte{2, 0, 0, 0, 0x20, 1}
	ip := netip.MustParseAddr("fd00:20::101")
	f := UnsolicitedNAFrame(mac, ip)
	p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("decode: %v", el.Error())
	}
	e := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if e.DstMAC.String() != "33:33:00:00:00:01" || e.SrcMAC.String() != "02:00:00:00:20:01" || e.EthernetType != layers.EthernetTypeIPv6 {
		t.Fatalf("ethernet %v -> %v type %v", e.SrcMAC, e.DstMAC, e.EthernetType)
	}
	h := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	if h.HopLimit != 255 || h.DstIP.String() != "ff02::1" || h.SrcIP.String() != ip.String() {
		t.Fatalf("ipv6 %v -> %v hop limit %d", h.SrcIP, h.DstIP, h.HopLimit)
	}
	icmp := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	if icmp.TypeCode.Type() != layers.ICMPv6TypeNeighborAdvertisement {
		t.Fatalf("icmpv6 type %v", icmp.TypeCode)
	}
	// gopacket computes the checksum the frame should carry.
	want := icmp.Checksum
	if err := icmp.SetNetworkLayerForChecksum(h); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, icmp, gopacket.Payload(icmp.Payload)); err != nil {
		t.Fatal(err)
	}
	if got := uint16(buf.Bytes()[2])<<8 | uint16(buf.Bytes()[3]); got != want {
		t.Fatalf("checksum %#04x, want %#04x", want, got)
	}
	na, ok := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
	if !ok {
		t.Fatalf("no neighbor advertisement: %v", p)
	}
	if !na.Override() || na.Solicited() || na.Router() || na.TargetAddress.String() != ip.String() {
		t.Fatalf("na flags %#x target %v", na.Flags, na.TargetAddress)
	}
	if len(na.Options) != 1 || na.Options[0].Type != layers.ICMPv6OptTargetAddress || [6]byte(na.Options[0].Data) != mac {
		t.Fatalf("na options %+v", na.Options)
	}
	if err := SendUnsolicitedNA(1, mac, netip.MustParseAddr("10.20.0.101")); err == nil {
		t.Fatal("SendUnsolicitedNA accepted an ipv4 address")
	}
}
