package servers

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
)

// ServeEcho answers every datagram on pc with the same bytes until pc is
// closed.
func ServeEcho(pc net.PacketConn) error {
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		pc.WriteTo(buf[:n], from)
	}
}

// ServeTCPEcho copies every connection's bytes back to it until l is closed.
func ServeTCPEcho(l net.Listener) error {
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go func() {
			defer c.Close()
			io.Copy(c, c)
		}()
	}
}

// DNS holds what the DNS-like service answers: A with V4, AAAA with V6, TXT
// with Name, for any question name.
type DNS struct {
	Name string
	V4   netip.Addr
	V6   netip.Addr
}

// DNS record types and codes used here (RFC 1035, RFC 3596).
const (
	dnsTypeA     = 1
	dnsTypeTXT   = 16
	dnsTypeAAAA  = 28
	dnsClassIN   = 1
	rcodeFormErr = 1
	rcodeNotImp  = 4
)

// Serve answers queries on pc until it is closed.
func (d DNS) Serve(pc net.PacketConn) error {
	buf := make([]byte, 1500)
	out := make([]byte, 0, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if resp, ok := d.Answer(buf[:n], out[:0]); ok {
			pc.WriteTo(resp, from)
		}
	}
}

// Answer builds the response to query q into out. ok is false when q is too
// short to answer at all (no header): such datagrams are dropped.
func (d DNS) Answer(q, out []byte) (resp []byte, ok bool) {
	if len(q) < 12 {
		return nil, false
	}
	flags := binary.BigEndian.Uint16(q[2:])
	if flags&0x8000 != 0 { // a response, not a query
		return nil, false
	}
	hdr := func(rcode uint16, qd, an uint16) []byte {
		out = append(out[:0], q[0], q[1])
		// QR=1, opcode and RD copied, AA=1.
		f := 0x8000 | flags&0x7900 | 0x0400 | rcode
		out = binary.BigEndian.AppendUint16(out, f)
		out = binary.BigEndian.AppendUint16(out, qd)
		out = binary.BigEndian.AppendUint16(out, an)
		out = binary.BigEndian.AppendUint16(out, 0)
		out = binary.BigEndian.AppendUint16(out, 0)
		return out
	}
	if binary.BigEndian.Uint16(q[4:]) != 1 || flags&0x7800 != 0 {
		return hdr(rcodeNotImp, 0, 0), true
	}
	// Walk the question name (labels only, no compression in a question).
	i := 12
	for {
		if i >= len(q) {
			return hdr(rcodeFormErr, 0, 0), true
		}
		l := int(q[i])
		if l == 0 {
			i++
			break
		}
		if l > 63 || i+1+l > len(q) {
			return hdr(rcodeFormErr, 0, 0), true
		}
		i += 1 + l
	}
	if i+4 > len(q) || i-12 > 255 {
		return hdr(rcodeFormErr, 0, 0), true
	}
	qtype := binary.BigEndian.Uint16(q[i:])
	qclass := binary.BigEndian.Uint16(q[i+2:])
	question := q[12 : i+4]
	var rdata []byte
	switch {
	case qclass != dnsClassIN:
	case qtype == dnsTypeA && d.V4.Is4():
		a := d.V4.As4()
		rdata = a[:]
	case qtype == dnsTypeAAAA && d.V6.Is6():
		a := d.V6.As16()
		rdata = a[:]
	case qtype == dnsTypeTXT:
		name := d.Name
		if len(name) > 255 {
			name = name[:255]
		}
		rdata = append([]byte{byte(len(name))}, name...)
	}
	an := uint16(0)
	if rdata != nil {
		an = 1
	}
	out = hdr(0, 1, an)
	out = append(out, question...)
	if rdata != nil {
		out = append(out, 0xc0, 12) // pointer to the question name
		out = binary.BigEndian.AppendUint16(out, qtype)
		out = binary.BigEndian.AppendUint16(out, dnsClassIN)
		out = binary.BigEndian.AppendUint32(out, 60)
		out = binary.BigEndian.AppendUint16(out, uint16(len(rdata)))
		out = append(out, rdata...)
	}
	return out, true
}
