package tcpproxy

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// Side names one side of the terminator.
type Side int

const (
	// Mobile is the side facing the mobile: netstack accepts the mobile's
	// connection as the representative address.
	Mobile Side = iota
	// Server is the side facing the actual servers: netstack connects
	// from a gateway address.
	Server
)

func (s Side) String() string {
	switch s {
	case Mobile:
		return "mobile"
	case Server:
		return "server"
	}
	return fmt.Sprintf("side(%d)", int(s))
}

// nicID is the only NIC of each side's stack.
const nicID tcpip.NICID = 1

// side is one netstack with its one NIC and link, and the profile its TCP
// options come from.
type side struct {
	which   Side
	stack   *stack.Stack
	link    *Link
	profile atomic.Pointer[Profile]
	mu      sync.Mutex // serializes setProfile
	// onProfile runs under mu after a new profile is applied (the mobile
	// side replaces its forwarder there).
	onProfile func(Profile)
}

// newSide builds a side's stack: IPv4 and IPv6, TCP only, one NIC on a new
// Link, default routes out of it, and p's options.
func newSide(which Side, p Profile, lc LinkConfig) (*side, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	link, err := NewLink(which.String(), p.MTU(), lc)
	if err != nil {
		return nil, err
	}
	s := stack.New(stack.Options{
		NetworkProtocols: []stack.NetworkProtocolFactory{
			// No IGMP: the link carries one flow's TCP, no multicast.
			ipv4.NewProtocolWithOptions(ipv4.Options{IGMP: ipv4.IGMPOptions{Enabled: false}}),
			ipv6.NewProtocolWithOptions(ipv6.Options{
				// No router solicitations, no RA handling, no
				// autoconfiguration: addresses and routes are ours.
				NDPConfigs:       ipv6.NDPConfigurations{},
				AutoGenLinkLocal: false,
				// No MLD reports for solicited-node groups.
				MLD: ipv6.MLDOptions{Enabled: false},
				// No DAD probes: the dataplane owns the addresses and
				// answers neighbour discovery itself.
				DADConfigs: stack.DADConfigurations{DupAddrDetectTransmits: 0},
			}),
		},
		// TCP only: the dataplane hands over nothing else.
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
		// Everything arrives from the dataplane; nothing loops back inside.
		HandleLocal: false,
	})
	fail := func(what string, e tcpip.Error) (*side, error) {
		s.Destroy()
		return nil, fmt.Errorf("%s stack %s: %s", which, what, e)
	}
	// A terminator, not a router: never forward between addresses.
	for _, proto := range []tcpip.NetworkProtocolNumber{ipv4.ProtocolNumber, ipv6.ProtocolNumber} {
		if err := s.SetForwardingDefaultAndAllNICs(proto, false); err != nil {
			return fail("forwarding", err)
		}
	}
	if err := p.applyStack(s); err != nil {
		s.Destroy()
		return nil, err
	}
	if err := s.CreateNICWithOptions(nicID, link, stack.NICOptions{Name: which.String()}); err != nil {
		return fail("nic", err)
	}
	s.SetRouteTable([]tcpip.Route{
		{Destination: header.IPv4EmptySubnet, NIC: nicID},
		{Destination: header.IPv6EmptySubnet, NIC: nicID},
	})
	sd := &side{which: which, stack: s, link: link}
	sd.profile.Store(&p)
	return sd, nil
}

// setProfile applies p to the side's stack and NIC; connections made or
// accepted afterwards follow it, established ones keep what they
// negotiated.
func (sd *side) setProfile(p Profile) error {
	if err := p.Validate(); err != nil {
		return err
	}
	sd.mu.Lock()
	defer sd.mu.Unlock()
	if err := p.applyStack(sd.stack); err != nil {
		// Restore the old profile's options; they applied before.
		_ = sd.profile.Load().applyStack(sd.stack)
		return err
	}
	if err := sd.stack.SetNICMTU(nicID, p.MTU()); err != nil {
		return fmt.Errorf("%s stack mtu: %s", sd.which, err)
	}
	sd.profile.Store(&p)
	if sd.onProfile != nil {
		sd.onProfile(p)
	}
	return nil
}

// addAddress gives the side's NIC a as its own address (server side: the
// gateway addresses it connects from).
func (sd *side) addAddress(a netip.Addr) error {
	pa := tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddrFromSlice(a.AsSlice()).WithPrefix(),
	}
	if a.Is6() {
		pa.Protocol = ipv6.ProtocolNumber
	}
	if err := sd.stack.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
		return fmt.Errorf("%s stack address %s: %s", sd.which, a, err)
	}
	return nil
}

// fullAddr converts ap for netstack.
func fullAddr(ap netip.AddrPort) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFromSlice(ap.Addr().Unmap().AsSlice()), Port: ap.Port()}
}

// addrPort converts a netstack address and port.
func addrPort(a tcpip.Address, port uint16) netip.AddrPort {
	ip, _ := netip.AddrFromSlice(a.AsSlice())
	return netip.AddrPortFrom(ip, port)
}

// netProto is the network protocol of a.
func netProto(a netip.Addr) tcpip.NetworkProtocolNumber {
	if a.Unmap().Is4() {
		return ipv4.ProtocolNumber
	}
	return ipv6.ProtocolNumber
}
