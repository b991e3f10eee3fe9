package fig2

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// MAC is a 6-byte hardware address that reads and writes as aa:bb:cc:dd:ee:ff.
type MAC [6]byte

func (m MAC) String() string { return net.HardwareAddr(m[:]).String() }

// HW returns m as a net.HardwareAddr (a copy).
func (m MAC) HW() net.HardwareAddr { return append(net.HardwareAddr(nil), m[:]...) }

// MarshalText writes m as aa:bb:cc:dd:ee:ff.
func (m MAC) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText parses aa:bb:cc:dd:ee:ff.
func (m *MAC) UnmarshalText(b []byte) error {
	hw, err := net.ParseMAC(string(b))
	if err != nil || len(hw) != 6 {
		return fmt.Errorf("bad mac %q", b)
	}
	copy(m[:], hw)
	return nil
}

// Deterministic locally administered MACs: 02:73:70:ROLE:INDEX:PORT.
const (
	roleMobile = 0x01
	roleNAS    = 0x02
	roleLB     = 0x03
	roleGW     = 0x04
	roleServer = 0x05
	roleCtl    = 0x06
	roleSwitch = 0x0f
	roleAir    = 0x0e
)

func mac(role, idx, port int) MAC { return MAC{0x02, 0x73, 0x70, byte(role), byte(idx), byte(port)} }

// Iface is one interface of the plan: where it lives, its MAC and addresses
// (address with the on-link prefix length), and its peer (the other end of its
// veth, "namespace/interface").
type Iface struct {
	NS   string       `json:"ns"`
	Name string       `json:"name"`
	MAC  MAC          `json:"mac"`
	IPv4 netip.Prefix `json:"ipv4,omitzero"`
	IPv6 netip.Prefix `json:"ipv6,omitzero"`
	Peer string       `json:"peer"`
}

// Net is one LAN: a bridge in the switch namespace and its prefixes.
type Net struct {
	Bridge string       `json:"bridge"`
	IPv4   netip.Prefix `json:"ipv4"`
	IPv6   netip.Prefix `json:"ipv6"`
}

// Mobile is one mobile device (MS). It keeps IPv4/IPv6 while it moves; it
// has one wireless link per ingress point (Wireless[n-1] for ingress n), and
// only the link to its current ingress is up.
type Mobile struct {
	Name     string     `json:"name"`
	NS       string     `json:"ns"`
	IPv4     netip.Addr `json:"ipv4"`
	IPv6     netip.Addr `json:"ipv6"`
	Gateway  int        `json:"gateway"` // the gateway whose range holds the address
	Ingress  int        `json:"ingress"` // current ingress point, 1-based
	Wireless []Iface    `json:"wireless"`
	// NASSide[n-1] is the NAS end of the wireless link to ingress n.
	NASSide []Iface `json:"nas_side"`
	// Air[n-1] is the pair of linkem interfaces on the link to ingress n
	// (mobile side, NAS side), empty without link emulation.
	Air [][2]Iface `json:"air,omitempty"`
}

// NAS is the network access device (router) of one ingress point.
type NAS struct {
	NS   string `json:"ns"`
	ToLB Iface  `json:"to_lb"` // toward the LB's ingress side
	Mgmt Iface  `json:"mgmt"`
	// PeerV4 and PeerV6 are the NAS's own addresses on every wireless link
	// (the PPP peer address the mobiles route through).
	PeerV4 netip.Addr `json:"peer_v4"`
	PeerV6 netip.Addr `json:"peer_v6"`
}

// LB is the load balancer of one ingress point. samepathd runs in NS,
// attached to Ingress and LAN. Until it runs the namespace is a kernel router.
type LB struct {
	NS         string         `json:"ns"`
	Ingress    Iface          `json:"ingress"` // veth to the NAS (down direction out of here)
	LAN        Iface          `json:"lan"`     // veth into LAN1 (up direction out of here)
	Mgmt       Iface          `json:"mgmt"`
	ControlAPI netip.AddrPort `json:"control_api"` // suggested samepathd API address on the mgmt net
	// NASMAC/NASv4/NASv6: the next hop for the down direction (the NAS's ToLB).
	NASMAC MAC        `json:"nas_mac"`
	NASv4  netip.Addr `json:"nas_v4"`
	NASv6  netip.Addr `json:"nas_v6"`
}

// Ingress is one ingress point: a NAS and its LB.
type Ingress struct {
	Index int `json:"index"`
	NAS   NAS `json:"nas"`
	LB    LB  `json:"lb"`
}

// Gateway is one packet gateway. Until the gateway role exists it is a kernel
// router that counts what it forwards (nftables table CountTable).
type Gateway struct {
	Index      int            `json:"index"`
	NS         string         `json:"ns"`
	LAN1       Iface          `json:"lan1"`
	LAN2       Iface          `json:"lan2"`
	Mgmt       Iface          `json:"mgmt"`
	Ranges     []netip.Prefix `json:"ranges"` // mobile address ranges this gateway owns (T1/T4)
	ControlAPI netip.AddrPort `json:"control_api"`
}

// Server is one actual server, running `testbed serve`.
type Server struct {
	Name    string `json:"name"`
	Group   string `json:"group"`
	NS      string `json:"ns"`
	LAN     Iface  `json:"lan"`
	HTTP    int    `json:"http_port"`
	Echo    int    `json:"echo_port"` // TCP and UDP
	DNS     int    `json:"dns_port"`
	Process int    `json:"pid,omitempty"`
}

// Group is a server group. VIPv4/VIPv6 are the representative addresses the
// gateway role will balance (T6); until it exists nothing answers them.
type Group struct {
	Name    string     `json:"name"`
	VIPv4   netip.Addr `json:"vip_v4"`
	VIPv6   netip.Addr `json:"vip_v6"`
	Members []string   `json:"members"`
}

// Ctl is the control process's namespace.
type Ctl struct {
	NS     string         `json:"ns"`
	Mgmt   Iface          `json:"mgmt"`
	RADIUS netip.AddrPort `json:"radius"`      // suggested auth port; accounting is +1
	API    netip.AddrPort `json:"control_api"` // suggested samepath-control API
}

// Plan is the whole FIG. 2 testbed: names, interfaces, MACs, addresses.
// `testbed up fig2 --json` prints it.
type Plan struct {
	Topology string    `json:"topology"` // "fig2"
	Prefix   string    `json:"prefix"`
	Switch   string    `json:"switch_ns"` // holds the bridges LAN1, LAN2, Mgmt
	Air      string    `json:"air_ns,omitempty"`
	LAN1     Net       `json:"lan1"`
	LAN2     Net       `json:"lan2"`
	Mgmt     Net       `json:"mgmt"`
	Ctl      Ctl       `json:"ctl"`
	Mobiles  []Mobile  `json:"mobiles"`
	Ingress  []Ingress `json:"ingress"`
	Gateways []Gateway `json:"gateways"`
	Servers  []Server  `json:"servers"`
	Groups   []Group   `json:"groups"`
}

// Address plan constants.
const (
	NumIngress  = 3
	NumGateways = 2
	ControlPort = 7700 // samepathd API port suggested on the mgmt net
	CtlAPIPort  = 7701
	RADIUSPort  = 1812
	HTTPPort    = 80
	EchoPort    = 7
	DNSPort     = 53
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

// NewPlan builds the plan for a run with namespace prefix prefix and the
// given number of mobiles (mobile i's address is in gateway ((i-1)%2)+1's
// range). air says whether the wireless links go through linkem.
func NewPlan(prefix string, mobiles int, air bool) (*Plan, error) {
	if prefix == "" || strings.ContainsAny(prefix, "/- \x00") || len(prefix) > 20 {
		return nil, fmt.Errorf("bad prefix %q: want 1-20 characters, no '/', '-' or space", prefix)
	}
	if mobiles < 1 || mobiles > 16 {
		return nil, fmt.Errorf("mobiles %d: want 1..16", mobiles)
	}
	ns := func(s string) string { return prefix + "-" + s }
	p := &Plan{
		Topology: "fig2",
		Prefix:   prefix,
		Switch:   ns("sw"),
		LAN1:     Net{Bridge: "lan1", IPv4: pfx("10.10.0.0/24"), IPv6: pfx("fd00:10::/64")},
		LAN2:     Net{Bridge: "lan2", IPv4: pfx("10.20.0.0/24"), IPv6: pfx("fd00:20::/64")},
		Mgmt:     Net{Bridge: "mgmt", IPv4: pfx("10.99.0.0/24"), IPv6: pfx("fd00:99::/64")},
	}
	if air {
		p.Air = ns("air")
	}
	mgmt := func(nsName string, role, idx, host int, swPort string) Iface {
		return Iface{NS: nsName, Name: "mgmt", MAC: mac(role, idx, 9),
			IPv4: pfx(fmt.Sprintf("10.99.0.%d/24", host)), IPv6: pfx(fmt.Sprintf("fd00:99::%d/64", host)),
			Peer: p.Switch + "/" + swPort}
	}
	p.Ctl = Ctl{NS: ns("ctl"), Mgmt: mgmt(ns("ctl"), roleCtl, 1, 1, "mctl"),
		RADIUS: netip.AddrPortFrom(addr("10.99.0.1"), RADIUSPort), API: netip.AddrPortFrom(addr("10.99.0.1"), CtlAPIPort)}
	for g := 1; g <= NumGateways; g++ {
		gns := ns(fmt.Sprintf("gw%d", g))
		m := mgmt(gns, roleGW, g, 30+g, fmt.Sprintf("mgw%d", g))
		p.Gateways = append(p.Gateways, Gateway{
			Index: g, NS: gns,
			LAN1: Iface{NS: gns, Name: "lan1", MAC: mac(roleGW, g, 1), IPv4: pfx(fmt.Sprintf("10.10.0.%d/24", g)),
				IPv6: pfx(fmt.Sprintf("fd00:10::%d/64", g)), Peer: p.Switch + fmt.Sprintf("/l1gw%d", g)},
			LAN2: Iface{NS: gns, Name: "lan2", MAC: mac(roleGW, g, 2), IPv4: pfx(fmt.Sprintf("10.20.0.%d/24", g)),
				IPv6: pfx(fmt.Sprintf("fd00:20::%d/64", g)), Peer: p.Switch + fmt.Sprintf("/l2gw%d", g)},
			Mgmt:       m,
			Ranges:     []netip.Prefix{pfx(fmt.Sprintf("10.10%d.0.0/24", g)), pfx(fmt.Sprintf("fd00:10%d::/64", g))},
			ControlAPI: netip.AddrPortFrom(m.IPv4.Addr(), ControlPort),
		})
	}
	for n := 1; n <= NumIngress; n++ {
		nasNS, lbNS := ns(fmt.Sprintf("nas%d", n)), ns(fmt.Sprintf("lb%d", n))
		toLB := Iface{NS: nasNS, Name: "lb", MAC: mac(roleNAS, n, 1), IPv4: pfx(fmt.Sprintf("10.1.%d.1/24", n)),
			IPv6: pfx(fmt.Sprintf("fd00:1:%d::1/64", n)), Peer: lbNS + "/ingress"}
		lbm := mgmt(lbNS, roleLB, n, 20+n, fmt.Sprintf("mlb%d", n))
		p.Ingress = append(p.Ingress, Ingress{
			Index: n,
			NAS: NAS{NS: nasNS, ToLB: toLB, Mgmt: mgmt(nasNS, roleNAS, n, 10+n, fmt.Sprintf("mnas%d", n)),
				PeerV4: addr("10.100.0.1"), PeerV6: addr("fe80::1")},
			LB: LB{NS: lbNS,
				Ingress: Iface{NS: lbNS, Name: "ingress", MAC: mac(roleLB, n, 1), IPv4: pfx(fmt.Sprintf("10.1.%d.2/24", n)),
					IPv6: pfx(fmt.Sprintf("fd00:1:%d::2/64", n)), Peer: nasNS + "/lb"},
				LAN: Iface{NS: lbNS, Name: "lan", MAC: mac(roleLB, n, 2), IPv4: pfx(fmt.Sprintf("10.10.0.%d/24", 10+n)),
					IPv6: pfx(fmt.Sprintf("fd00:10::%d/64", 10+n)), Peer: p.Switch + fmt.Sprintf("/l1lb%d", n)},
				Mgmt:       lbm,
				ControlAPI: netip.AddrPortFrom(lbm.IPv4.Addr(), ControlPort),
				NASMAC:     toLB.MAC, NASv4: toLB.IPv4.Addr(), NASv6: toLB.IPv6.Addr(),
			},
		})
	}
	count := make([]int, NumGateways+1)
	for i := 1; i <= mobiles; i++ {
		g := (i-1)%NumGateways + 1
		count[g]++
		host := 9 + count[g]
		mns := ns(fmt.Sprintf("mob%d", i))
		m := Mobile{Name: fmt.Sprintf("mob%d", i), NS: mns, Gateway: g, Ingress: 1,
			IPv4: addr(fmt.Sprintf("10.10%d.0.%d", g, host)), IPv6: addr(fmt.Sprintf("fd00:10%d::%d", g, host))}
		for n := 1; n <= NumIngress; n++ {
			in := p.Ingress[n-1]
			w := Iface{NS: mns, Name: fmt.Sprintf("w%d", n), MAC: mac(roleMobile, i, n),
				IPv4: netip.PrefixFrom(m.IPv4, 32), IPv6: netip.PrefixFrom(m.IPv6, 128)}
			s := Iface{NS: in.NAS.NS, Name: fmt.Sprintf("m%d", i), MAC: mac(roleNAS, n, 0x10+i),
				IPv4: netip.PrefixFrom(in.NAS.PeerV4, 32), IPv6: netip.PrefixFrom(in.NAS.PeerV6, 64)}
			if air {
				a := Iface{NS: p.Air, Name: fmt.Sprintf("m%dn%da", i, n), MAC: mac(roleAir, i, n), Peer: w.NS + "/" + w.Name}
				b := Iface{NS: p.Air, Name: fmt.Sprintf("m%dn%db", i, n), MAC: mac(roleAir, i, 0x10+n), Peer: s.NS + "/" + s.Name}
				w.Peer = a.NS + "/" + a.Name
				s.Peer = b.NS + "/" + b.Name
				m.Air = append(m.Air, [2]Iface{a, b})
			} else {
				w.Peer = s.NS + "/" + s.Name
				s.Peer = w.NS + "/" + w.Name
			}
			m.Wireless = append(m.Wireless, w)
			m.NASSide = append(m.NASSide, s)
		}
		p.Mobiles = append(p.Mobiles, m)
	}
	servers := []struct {
		name, group string
		host        int
	}{{"a1", "A", 11}, {"a2", "A", 12}, {"b1", "B", 21}, {"b2", "B", 22}}
	for i, s := range servers {
		sns := ns(s.name)
		p.Servers = append(p.Servers, Server{Name: s.name, Group: s.group, NS: sns,
			LAN: Iface{NS: sns, Name: "lan", MAC: mac(roleServer, i+1, 1), IPv4: pfx(fmt.Sprintf("10.20.0.%d/24", s.host)),
				IPv6: pfx(fmt.Sprintf("fd00:20::%d/64", s.host)), Peer: p.Switch + "/l2" + s.name},
			HTTP: HTTPPort, Echo: EchoPort, DNS: DNSPort})
	}
	p.Groups = []Group{
		{Name: "A", VIPv4: addr("10.30.0.1"), VIPv6: addr("fd00:30::1"), Members: []string{"a1", "a2"}},
		{Name: "B", VIPv4: addr("10.30.0.2"), VIPv6: addr("fd00:30::2"), Members: []string{"b1", "b2"}},
	}
	return p, nil
}

// Namespaces lists every namespace of the plan (switch first).
func (p *Plan) Namespaces() []string {
	out := []string{p.Switch, p.Ctl.NS}
	if p.Air != "" {
		out = append(out, p.Air)
	}
	for _, m := range p.Mobiles {
		out = append(out, m.NS)
	}
	for _, in := range p.Ingress {
		out = append(out, in.NAS.NS, in.LB.NS)
	}
	for _, g := range p.Gateways {
		out = append(out, g.NS)
	}
	for _, s := range p.Servers {
		out = append(out, s.NS)
	}
	return out
}

// Mobile returns the mobile called name.
func (p *Plan) Mobile(name string) (*Mobile, error) {
	for i := range p.Mobiles {
		if p.Mobiles[i].Name == name {
			return &p.Mobiles[i], nil
		}
	}
	return nil, fmt.Errorf("no mobile %q in %s", name, p.Prefix)
}

// Server returns the server called name.
func (p *Plan) Server(name string) (*Server, error) {
	for i := range p.Servers {
		if p.Servers[i].Name == name {
			return &p.Servers[i], nil
		}
	}
	return nil, fmt.Errorf("no server %q in %s", name, p.Prefix)
}

// ServerName names the server whose LAN IPv4 or IPv6 address is ip, or
// returns ip itself when no server has it.
func (p *Plan) ServerName(ip netip.Addr) string {
	for _, s := range p.Servers {
		if s.LAN.IPv4.Addr() == ip || s.LAN.IPv6.Addr() == ip {
			return s.Name
		}
	}
	return ip.String()
}
