package nas

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"

	"samepath/ctl/aaa"
)

// Client is a RADIUS client.
type Client struct {
	Auth, Acct string // server addresses host:port
	Secret     []byte
	NASID      string        // NAS-Identifier
	Timeout    time.Duration // per try
	Retries    int
	// Dial opens the UDP socket of each exchange (nil: net.Dialer). The
	// testbed passes one that dials inside the NAS's network namespace.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// ErrReject is returned (wrapped, with the Reply-Message) by Login on Access-Reject.
var ErrReject = errors.New("access rejected")

func (c *Client) exchange(ctx context.Context, addr string, p *radius.Packet) (*radius.Packet, error) {
	b, err := aaa.EncodeRequest(p)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	dial := c.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	conn, err := dial(ctx, "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	defer conn.Close()
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	buf := make([]byte, radius.MaxPacketLength)
	for try := 0; try <= c.Retries; try++ {
		if _, err := conn.Write(b); err != nil {
			return nil, fmt.Errorf("send: %w", err)
		}
		dl := time.Now().Add(timeout)
		if d, ok := ctx.Deadline(); ok && d.Before(dl) {
			dl = d
		}
		conn.SetReadDeadline(dl)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				break // timeout: retry
			}
			r := buf[:n]
			if n < 20 || r[1] != b[1] || !radius.IsAuthenticResponse(r, b, c.Secret) || !aaa.VerifyResponseMessageAuthenticator(r, b[4:20], c.Secret) {
				continue // not ours or forged
			}
			return radius.Parse(r, c.Secret)
		}
	}
	return nil, fmt.Errorf("no answer from %s after %d tries", addr, c.Retries+1)
}

func (c *Client) base(p *radius.Packet) {
	if c.NASID != "" {
		rfc2865.NASIdentifier_SetString(p, c.NASID)
	}
}

// Grant is what an Access-Accept gave.
type Grant struct {
	IP netip.Addr // Framed-IP-Address; zero for an IPv6-only grant
	// IP6 is the Framed-IPv6-Prefix, or the Framed-IPv6-Address as a /128.
	IP6            netip.Prefix
	SessionTimeout time.Duration
	Interim        time.Duration
}

// Login sends an Access-Request (PAP) and returns the Access-Accept's grant.
func (c *Client) Login(ctx context.Context, user, password, device string) (Grant, error) {
	p := radius.New(radius.CodeAccessRequest, c.Secret)
	c.base(p)
	rfc2865.UserName_SetString(p, user)
	rfc2865.UserPassword_SetString(p, password)
	rfc2865.CallingStationID_SetString(p, device)
	r, err := c.exchange(ctx, c.Auth, p)
	if err != nil {
		return Grant{}, err
	}
	if r.Code != radius.CodeAccessAccept {
		return Grant{}, fmt.Errorf("%w: %s", ErrReject, rfc2865.ReplyMessage_GetString(r))
	}
	g := Grant{IP6: aaa.AcctIPv6(r), SessionTimeout: time.Duration(rfc2865.SessionTimeout_Get(r)) * time.Second}
	ip, err := rfc2865.FramedIPAddress_Lookup(r)
	if err != nil && !g.IP6.IsValid() {
		return Grant{}, fmt.Errorf("access-accept without Framed-IP-Address, Framed-IPv6-Prefix or Framed-IPv6-Address: %w", err)
	}
	if err == nil {
		a, _ := netip.AddrFromSlice(ip)
		g.IP = a.Unmap()
	}
	if v, ok := r.Lookup(85); ok { // Acct-Interim-Interval
		if n, err := radius.Integer(v); err == nil {
			g.Interim = time.Duration(n) * time.Second
		}
	}
	return g, nil
}

// Acct is one Accounting-Request.
type Acct struct {
	Status    rfc2866.AcctStatusType
	SessionID string
	User      string
	Device    string
	IP        netip.Addr
	IP6       netip.Prefix               // sent as Framed-IPv6-Prefix, or Framed-IPv6-Address for a /128
	Cause     rfc2866.AcctTerminateCause // for Stop
	InOctets  uint32
	OutOctets uint32
}

// Account sends an Accounting-Request and waits for the Accounting-Response.
func (c *Client) Account(ctx context.Context, a Acct) error {
	p := radius.New(radius.CodeAccountingRequest, c.Secret)
	c.base(p)
	rfc2866.AcctStatusType_Set(p, a.Status)
	rfc2866.AcctSessionID_SetString(p, a.SessionID)
	if a.User != "" {
		rfc2865.UserName_SetString(p, a.User)
	}
	rfc2865.CallingStationID_SetString(p, a.Device)
	if a.IP.Is4() { // an IPv6-only session's IP is its prefix: IP6 says it
		rfc2865.FramedIPAddress_Set(p, a.IP.AsSlice())
	}
	aaa.SetIPv6(p, a.IP6)
	if a.Cause != 0 {
		rfc2866.AcctTerminateCause_Set(p, a.Cause)
	}
	rfc2866.AcctInputOctets_Set(p, rfc2866.AcctInputOctets(a.InOctets))
	rfc2866.AcctOutputOctets_Set(p, rfc2866.AcctOutputOctets(a.OutOctets))
	r, err := c.exchange(ctx, c.Acct, p)
	if err != nil {
		return err
	}
	if r.Code != radius.CodeAccountingResponse {
		return fmt.Errorf("accounting answered with %v", r.Code)
	}
	return nil
}

// Mobile is one emulated mobile device.
type Mobile struct {
	User, Password, Device string
}

// Step is what Emulate did for one mobile.
type Step struct {
	Device  string     `json:"device"`
	IP      netip.Addr `json:"ip"`
	Session string     `json:"session"`
	Err     string     `json:"error,omitempty"`
}

// EmulateConfig says what each mobile does.
type EmulateConfig struct {
	Interims int  // Interim-Updates between Start and the end
	Dormant  bool // go dormant (Stop Idle-Timeout) and come back (Start) once
	Logout   bool // end with Stop User-Request; false leaves the sessions up
}

// Emulate logs every mobile in (FIG. 3), starts accounting, sends
// interims, optionally a dormant period (FIG. 31) and the logout (FIG. 30).
func (c *Client) Emulate(ctx context.Context, ms []Mobile, ec EmulateConfig) []Step {
	out := make([]Step, len(ms))
	for i, m := range ms {
		st := &out[i]
		st.Device = m.Device
		st.Session = fmt.Sprintf("%s-%d", m.Device, time.Now().UnixNano())
		err := func() error {
			g, err := c.Login(ctx, m.User, m.Password, m.Device)
			if err != nil {
				return err
			}
			st.IP = g.IP
			a := Acct{Status: rfc2866.AcctStatusType_Value_Start, SessionID: st.Session, User: m.User, Device: m.Device, IP: g.IP}
			if err := c.Account(ctx, a); err != nil {
				return fmt.Errorf("start: %w", err)
			}
			for k := 0; k < ec.Interims; k++ {
				a.Status, a.InOctets, a.OutOctets = rfc2866.AcctStatusType_Value_InterimUpdate, uint32(1000*(k+1)), uint32(5000*(k+1))
				if err := c.Account(ctx, a); err != nil {
					return fmt.Errorf("interim: %w", err)
				}
			}
			if ec.Dormant {
				a.Status, a.Cause = rfc2866.AcctStatusType_Value_Stop, rfc2866.AcctTerminateCause_Value_IdleTimeout
				if err := c.Account(ctx, a); err != nil {
					return fmt.Errorf("dormant stop: %w", err)
				}
				a.Status, a.Cause = rfc2866.AcctStatusType_Value_Start, 0
				if err := c.Account(ctx, a); err != nil {
					return fmt.Errorf("restart: %w", err)
				}
			}
			if ec.Logout {
				a.Status, a.Cause = rfc2866.AcctStatusType_Value_Stop, rfc2866.AcctTerminateCause_Value_UserRequest
				if err := c.Account(ctx, a); err != nil {
					return fmt.Errorf("logout: %w", err)
				}
			}
			return nil
		}()
		if err != nil {
			st.Err = err.Error()
		}
	}
	return out
}
