package rewrite_test

import (
	"bytes"
	"testing"

	"samepath/dp/dptest"
	"samepath/dp/header"
	"samepath/dp/rewrite"
)

func TestTCPReset(t *testing.T) {
	mob, rep := a("10.101.0.5"), a("10.200.0.1")
	mob6, rep6 := a("fd00:101::5"), a("fd00:200::1")
	for _, tc := range []struct {
		name string
		in   []byte
		want []byte
	}{
		{"syn v4", dptest.Frame().Eth(macA, macB).IPv4(mob, rep).TCP(40000, 80).Flags(header.FlagSYN).Seq(1000).Bytes(),
			dptest.Frame().Eth(macB, macA).IPv4(rep, mob).DF().ID(0).TTL(64).TCP(80, 40000).Flags(header.FlagRST | header.FlagACK).Seq(0).Ack(1001).Window(0).Bytes()},
		{"ack with data, vlan", dptest.Frame().Eth(macA, macB).VLAN(7).IPv4(mob, rep).TCP(40000, 80).Flags(header.FlagACK | header.FlagPSH).Seq(5).Ack(777).Payload([]byte("GET /")).Bytes(),
			dptest.Frame().Eth(macB, macA).VLAN(7).IPv4(rep, mob).DF().ID(0).TTL(64).TCP(80, 40000).Flags(header.FlagRST).Seq(777).Window(0).Bytes()},
		{"fin without ack, v6", dptest.Frame().Eth(macA, macB).IPv6(mob6, rep6).TCP(40000, 443).Flags(header.FlagFIN).Seq(10).Payload([]byte("ab")).Bytes(),
			dptest.Frame().Eth(macB, macA).IPv6(rep6, mob6).TTL(64).TCP(443, 40000).Flags(header.FlagRST | header.FlagACK).Ack(13).Window(0).Bytes()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := make([]byte, 2048)
			n := rewrite.TCPReset(tc.in, &decode(t, tc.in).Parsed, out)
			if !bytes.Equal(out[:n], tc.want) {
				t.Errorf("reset differs: %s", dptest.Diff(tc.want, out[:n]))
			}
		})
	}
	rst := dptest.Frame().Eth(macA, macB).IPv4(mob, rep).TCP(1, 2).Flags(header.FlagRST).Bytes()
	if n := rewrite.TCPReset(rst, &decode(t, rst).Parsed, make([]byte, 2048)); n != 0 {
		t.Errorf("answered a RST with a RST")
	}
	udp := dptest.Frame().Eth(macA, macB).IPv4(mob, rep).UDP(1, 2).Bytes()
	if n := rewrite.TCPReset(udp, &decode(t, udp).Parsed, make([]byte, 2048)); n != 0 {
		t.Errorf("RST for UDP")
	}
	if n := rewrite.TCPReset(tcSyn(), &decode(t, tcSyn()).Parsed, make([]byte, 10)); n != 0 {
		t.Errorf("wrote past a short buffer")
	}
}

func tcSyn() []byte {
	return dptest.Frame().Eth(macA, macB).IPv4(a("10.0.0.1"), a("10.0.0.2")).TCP(1, 2).Flags(header.FlagSYN).Bytes()
}

func TestUnreachable(t *testing.T) {
	mob, rep := a("10.101.0.5"), a("10.200.0.1")
	mob6, rep6 := a("fd00:101::5"), a("fd00:200::1")
	big := bytes.Repeat([]byte("p"), 1400)
	for _, tc := range []struct {
		name string
		in   []byte
		want func(in []byte) []byte
		code uint8
	}{
		{"udp v4", dptest.Frame().Eth(macA, macB).IPv4(mob, rep).UDP(4000, 53).Payload([]byte("query")).Bytes(),
			func(in []byte) []byte {
				return dptest.Frame().Eth(macB, macA).IPv4(rep, mob).DF().ID(0).TTL(64).ICMPError(3, 13, 0, dptest.IP(in)).Bytes()
			}, header.ICMPv4AdminProhibited},
		{"big udp v4 quote cut at 576", dptest.Frame().Eth(macA, macB).IPv4(mob, rep).UDP(4000, 53).Payload(big).Bytes(),
			func(in []byte) []byte {
				return dptest.Frame().Eth(macB, macA).IPv4(rep, mob).DF().ID(0).TTL(64).ICMPError(3, 13, 0, dptest.IP(in)[:576-28]).Bytes()
			}, header.ICMPv4AdminProhibited},
		{"udp v6", dptest.Frame().Eth(macA, macB).IPv6(mob6, rep6).UDP(4000, 53).Payload(big).Bytes(),
			func(in []byte) []byte {
				return dptest.Frame().Eth(macB, macA).IPv6(rep6, mob6).TTL(64).ICMPError(1, 1, 0, dptest.IP(in)[:1280-48]).Bytes()
			}, header.ICMPv6AdminProhibited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := make([]byte, 2048)
			n := rewrite.Unreachable(tc.in, &decode(t, tc.in).Parsed, out, tc.code)
			want := tc.want(tc.in)
			if !bytes.Equal(out[:n], want) {
				t.Errorf("unreachable differs: %s", dptest.Diff(want, out[:n]))
			}
			if err := dptest.VerifyChecksums(out[:n]); err != nil {
				t.Error(err)
			}
		})
	}
	errPkt := dptest.Frame().Eth(macA, macB).IPv4(mob, rep).ICMPError(3, 3, 0, dptest.IP(tcSyn())).Bytes()
	if n := rewrite.Unreachable(errPkt, &decode(t, errPkt).Parsed, make([]byte, 2048), 13); n != 0 {
		t.Errorf("answered an ICMP error with an error")
	}
}
