package aaa

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2869"
	"layeh.com/radius/rfc3162"
	"layeh.com/radius/rfc6911"

	"samepath/internal/lograte"
)

// ClientConfig is one RADIUS client (NAS) allowed to talk to the server.
type ClientConfig struct {
	// Prefix is the client's source address or prefix ("10.0.0.1", "10.0.0.0/24").
	Prefix string `yaml:"prefix" json:"prefix"`
	Secret string `yaml:"secret" json:"-"`
	Name   string `yaml:"name" json:"name,omitempty"`
	// RequireMessageAuthenticator overrides ServerConfig's default when set.
	RequireMessageAuthenticator *bool `yaml:"require_message_authenticator" json:"require_message_authenticator,omitempty"`
	// DisconnectPort is the UDP port the client's NASes take
	// Disconnect-Request on (RFC 5176, usually 3799); 0: the client is
	// not sent any (a terminated session then ends at the gateways only).
	DisconnectPort int `yaml:"disconnect_port" json:"disconnect_port,omitempty"`
	// LBMAC is the MAC, on the gateway-side LAN, of the LB that carries
	// the traffic of this client's NASes. An Accounting Start from the
	// client (a session's start or its resume, FIG. 31) tells the
	// session's gateway to send the mobile's down traffic there at once
	// (T12, R-GW-4), without waiting for an up packet. Empty: the
	// gateway learns the LB from up packets only.
	LBMAC string `yaml:"lb_mac" json:"lb_mac,omitempty"`
}

// ServerConfig configures the RADIUS server.
type ServerConfig struct {
	AuthAddr string // UDP address for Access-Request, default ":1812"
	AcctAddr string // UDP address for Accounting-Request, default ":1813"
	Clients  []ClientConfig
	// RequireMessageAuthenticator drops Access-Requests without a valid
	// Message-Authenticator (BlastRADIUS, CVE-2024-3596). Default true.
	RequireMessageAuthenticator bool
	SessionTimeout              time.Duration // Session-Timeout in Access-Accept (0: omitted)
	AcctInterimInterval         time.Duration // Acct-Interim-Interval in Access-Accept (0: omitted)
	// DupTTL is how long answers are kept to answer retransmissions.
	DupTTL time.Duration
	// MaxInFlight bounds requests being processed; more are dropped and counted.
	MaxInFlight int
	// Readers is the number of reading goroutines per socket.
	Readers int
	// DurableTimeout bounds the wait for the state to reach disk before answering.
	DurableTimeout time.Duration
	// Log receives the rejects and the refused requests (unknown client,
	// wrong secret), at most one line per reason and client per
	// RejectLogEvery, with the count held back; nil: slog.Default.
	Log *slog.Logger
}

// DefaultServerConfig returns the defaults.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{AuthAddr: ":1812", AcctAddr: ":1813", RequireMessageAuthenticator: true, DupTTL: 10 * time.Second, MaxInFlight: 8192, Readers: 2, DurableTimeout: 5 * time.Second}
}

type client struct {
	prefix    netip.Prefix
	secret    []byte
	name      string
	requireMA bool
	daePort   int
	lbMAC     string // normalised ClientConfig.LBMAC
}

// Validate checks c and fills defaults.
func (c *ServerConfig) Validate() error {
	d := DefaultServerConfig()
	if c.AuthAddr == "" {
		c.AuthAddr = d.AuthAddr
	}
	if c.AcctAddr == "" {
		c.AcctAddr = d.AcctAddr
	}
	if c.DupTTL <= 0 {
		c.DupTTL = d.DupTTL
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = d.MaxInFlight
	}
	if c.Readers <= 0 {
		c.Readers = d.Readers
	}
	if c.DurableTimeout <= 0 {
		c.DurableTimeout = d.DurableTimeout
	}
	if len(c.Clients) == 0 {
		return errors.New("radius: no clients configured")
	}
	for _, cl := range c.Clients {
		if _, err := parseClientPrefix(cl.Prefix); err != nil {
			return err
		}
		if cl.Secret == "" {
			return fmt.Errorf("radius client %s: empty secret", cl.Prefix)
		}
		if cl.DisconnectPort < 0 || cl.DisconnectPort > 65535 {
			return fmt.Errorf("radius client %s: disconnect_port %d", cl.Prefix, cl.DisconnectPort)
		}
		if _, err := normalMAC(cl.LBMAC); err != nil {
			return fmt.Errorf("radius client %s: lb_mac: %w", cl.Prefix, err)
		}
	}
	if c.SessionTimeout < 0 || c.AcctInterimInterval < 0 {
		return errors.New("radius: negative session timeout or interim interval")
	}
	return nil
}

// normalMAC returns s, an Ethernet MAC, in the form net.HardwareAddr
// prints ("" stays "").
func normalMAC(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("%q is not an Ethernet MAC", s)
	}
	return hw.String(), nil
}

func parseClientPrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("radius client %q: not an address or prefix", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// AcctRequest is an Accounting-Request as the session manager sees it.
type AcctRequest struct {
	Status    rfc2866.AcctStatusType
	SessionID string
	Device    string
	User      string
	IP        netip.Addr // Framed-IP-Address
	// IP6 is the Framed-IPv6-Prefix (or Framed-IPv6-Address, as a /128).
	IP6         netip.Prefix
	Cause       rfc2866.AcctTerminateCause
	InOctets    uint64
	OutOctets   uint64
	InPackets   uint64
	OutPackets  uint64
	SessionTime uint32
	NAS         string // NAS-Identifier, else NAS-IP-Address, else source address
	// NASAddr is where the request came from: where the NAS listens for
	// Disconnect-Request (RFC 5176) on its client's disconnect_port.
	NASAddr netip.Addr
	// LBMAC is the lb_mac of the RADIUS client the request came from
	// (normalised; "" when it has none): the LB behind that NAS.
	LBMAC string
}

// Accounter records accounting (the session manager). It returns the
// store sequence to wait for before answering; an error means no answer
// (the NAS retransmits).
type Accounter interface {
	Account(r *AcctRequest) (uint64, error)
}

// Durability waits until a store sequence is on disk (a *store.Store).
type Durability interface {
	Wait(ctx context.Context, seq uint64) error
}

// ServerCounters are the RADIUS server's counters.
type ServerCounters struct {
	AuthRequests     atomic.Uint64
	Accepts          atomic.Uint64
	Rejects          atomic.Uint64
	AcctRequests     atomic.Uint64
	AcctResponses    atomic.Uint64
	AcctDropped      atomic.Uint64 // not recorded: no answer
	UnknownClient    atomic.Uint64
	Malformed        atomic.Uint64
	BadAuthenticator atomic.Uint64
	MissingMA        atomic.Uint64
	BadMA            atomic.Uint64
	WrongCode        atomic.Uint64
	StatusServer     atomic.Uint64 // RFC 5997 Status-Server requests
	DisconnectSent   atomic.Uint64 // RFC 5176 Disconnect-Requests sent to NASes
	DisconnectACK    atomic.Uint64
	DisconnectNAK    atomic.Uint64
	DisconnectFailed atomic.Uint64 // no answer or transport error
	DupAnswered      atomic.Uint64
	DupInProgress    atomic.Uint64
	Overload         atomic.Uint64
	NotDurable       atomic.Uint64
	SendErrors       atomic.Uint64
}

// Snapshot returns the counters by name.
func (c *ServerCounters) Snapshot() map[string]uint64 {
	return map[string]uint64{
		"auth_requests": c.AuthRequests.Load(), "accepts": c.Accepts.Load(), "rejects": c.Rejects.Load(),
		"acct_requests": c.AcctRequests.Load(), "acct_responses": c.AcctResponses.Load(), "acct_dropped": c.AcctDropped.Load(),
		"unknown_client": c.UnknownClient.Load(), "malformed": c.Malformed.Load(), "bad_authenticator": c.BadAuthenticator.Load(),
		"missing_message_authenticator": c.MissingMA.Load(), "bad_message_authenticator": c.BadMA.Load(),
		"wrong_code": c.WrongCode.Load(), "status_server": c.StatusServer.Load(),
		"disconnect_sent": c.DisconnectSent.Load(), "disconnect_ack": c.DisconnectACK.Load(), "disconnect_nak": c.DisconnectNAK.Load(), "disconnect_failed": c.DisconnectFailed.Load(), "dup_answered": c.DupAnswered.Load(), "dup_in_progress": c.DupInProgress.Load(),
		"overload": c.Overload.Load(), "not_durable": c.NotDurable.Load(), "send_errors": c.SendErrors.Load(),
	}
}

// Server is the RADIUS authentication and accounting server.
type Server struct {
	cfg     ServerConfig
	clients []client // longest prefix first
	users   *Users
	pool    *Pool
	acct    Accounter
	dur     Durability
	dup     *dupCache
	sem     chan struct{}
	C       ServerCounters
	log     *slog.Logger
	limit   *lograte.Limiter

	authConn *net.UDPConn
	acctConn *net.UDPConn
	wg       sync.WaitGroup
	bufs     sync.Pool
}

// NewServer checks cfg and returns a server; Listen binds it.
func NewServer(cfg ServerConfig, users *Users, pool *Pool, acct Accounter, dur Durability) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, users: users, pool: pool, acct: acct, dur: dur, dup: newDupCache(cfg.DupTTL), sem: make(chan struct{}, cfg.MaxInFlight),
		log: cfg.Log, limit: lograte.New(RejectLogEvery, nil)}
	if s.log == nil {
		s.log = slog.Default()
	}
	for _, cl := range cfg.Clients {
		p, _ := parseClientPrefix(cl.Prefix)
		lbMAC, _ := normalMAC(cl.LBMAC) // checked by Validate
		req := cfg.RequireMessageAuthenticator
		if cl.RequireMessageAuthenticator != nil {
			req = *cl.RequireMessageAuthenticator
		}
		s.clients = append(s.clients, client{prefix: p, secret: []byte(cl.Secret), name: cl.Name, requireMA: req, daePort: cl.DisconnectPort, lbMAC: lbMAC})
	}
	sort.SliceStable(s.clients, func(i, j int) bool { return s.clients[i].prefix.Bits() > s.clients[j].prefix.Bits() })
	s.bufs.New = func() any { b := make([]byte, radius.MaxPacketLength+1); return &b }
	return s, nil
}

// Listen binds the authentication and accounting sockets.
func (s *Server) Listen() error {
	var err error
	if s.authConn, err = listenUDP(s.cfg.AuthAddr); err != nil {
		return fmt.Errorf("radius auth %s: %w", s.cfg.AuthAddr, err)
	}
	if s.acctConn, err = listenUDP(s.cfg.AcctAddr); err != nil {
		s.authConn.Close()
		return fmt.Errorf("radius acct %s: %w", s.cfg.AcctAddr, err)
	}
	return nil
}

func listenUDP(addr string) (*net.UDPConn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, err
	}
	_ = c.SetReadBuffer(4 << 20)
	_ = c.SetWriteBuffer(4 << 20)
	return c, nil
}

// AuthAddr and AcctAddr are the bound addresses (after Listen).
func (s *Server) AuthAddr() net.Addr { return s.authConn.LocalAddr() }
func (s *Server) AcctAddr() net.Addr { return s.acctConn.LocalAddr() }

// Serve reads both sockets until ctx ends, then closes them and waits for
// requests in flight.
func (s *Server) Serve(ctx context.Context) error {
	if s.authConn == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	for i := 0; i < s.cfg.Readers; i++ {
		s.wg.Add(2)
		go s.routineRead(ctx, s.authConn, codeAccessReq)
		go s.routineRead(ctx, s.acctConn, codeAcctReq)
	}
	t := time.NewTicker(s.cfg.DupTTL / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.authConn.Close()
			s.acctConn.Close()
			s.wg.Wait()
			return nil
		case now := <-t.C:
			s.dup.sweep(now.UnixNano())
		}
	}
}

func (s *Server) lookupClient(a netip.Addr) *client {
	a = a.Unmap()
	for i := range s.clients {
		if s.clients[i].prefix.Contains(a) {
			return &s.clients[i]
		}
	}
	return nil
}

// routineRead reads one socket; each request is handled on its own
// goroutine (bounded by MaxInFlight) because answering waits for the disk.
func (s *Server) routineRead(ctx context.Context, conn *net.UDPConn, want byte) {
	defer s.wg.Done()
	for {
		bp := s.bufs.Get().(*[]byte)
		n, from, err := conn.ReadFromUDPAddrPort(*bp)
		if err != nil {
			s.bufs.Put(bp)
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		b := (*bp)[:n]
		cl := s.lookupClient(from.Addr())
		if cl == nil {
			s.C.UnknownClient.Add(1)
			s.logRefused(from.Addr().Unmap().String(), "unknown client", "from", from.String())
			s.bufs.Put(bp)
			continue
		}
		if n > radius.MaxPacketLength || n < radiusHeaderLen {
			s.C.Malformed.Add(1)
			s.bufs.Put(bp)
			continue
		}
		if b[0] != want && b[0] != codeStatusServer {
			s.C.WrongCode.Add(1)
			s.bufs.Put(bp)
			continue
		}
		key := dupKey{from: from, id: b[1]}
		copy(key.auth[:], b[4:20])
		if resp, state := s.dup.begin(key, time.Now().UnixNano()); state != dupNew {
			if state == dupDone {
				s.C.DupAnswered.Add(1)
				if _, err := conn.WriteToUDPAddrPort(resp, from); err != nil {
					s.C.SendErrors.Add(1)
				}
			} else {
				s.C.DupInProgress.Add(1)
			}
			s.bufs.Put(bp)
			continue
		}
		select {
		case s.sem <- struct{}{}:
		default:
			s.C.Overload.Add(1)
			s.dup.abort(key)
			s.bufs.Put(bp)
			continue
		}
		s.wg.Add(1)
		go s.handle(ctx, conn, cl, from, key, bp, n)
	}
}

func (s *Server) handle(ctx context.Context, conn *net.UDPConn, cl *client, from netip.AddrPort, key dupKey, bp *[]byte, n int) {
	defer func() {
		s.bufs.Put(bp)
		<-s.sem
		s.wg.Done()
	}()
	resp := s.process(ctx, cl, from, (*bp)[:n], conn == s.acctConn)
	if resp == nil {
		s.dup.abort(key)
		return
	}
	s.dup.finish(key, resp, time.Now().UnixNano())
	if _, err := conn.WriteToUDPAddrPort(resp, from); err != nil {
		s.C.SendErrors.Add(1)
	}
}

// process returns the encoded answer, or nil to stay silent; onAcct says
// the request came to the accounting port.
func (s *Server) process(ctx context.Context, cl *client, from netip.AddrPort, b []byte, onAcct bool) []byte {
	length, maOff, err := checkFrame(b)
	if err != nil {
		s.C.Malformed.Add(1)
		return nil
	}
	b = b[:length]
	code := b[0]
	switch code {
	case codeAcctReq:
		s.C.AcctRequests.Add(1)
		if !isAuthenticAcct(b, cl.secret) {
			s.C.BadAuthenticator.Add(1)
			s.logRefused(cl.name, "bad accounting authenticator (wrong secret?)", "client", cl.name, "from", from.String())
			return nil
		}
	case codeStatusServer:
		s.C.StatusServer.Add(1)
	default:
		s.C.AuthRequests.Add(1)
	}
	if maOff != 0 {
		if !verifyMessageAuthenticator(b, maOff, cl.secret) {
			s.C.BadMA.Add(1)
			s.logRefused(cl.name, "bad Message-Authenticator (wrong secret?)", "client", cl.name, "from", from.String())
			return nil
		}
	} else if code == codeStatusServer || (code == codeAccessReq && cl.requireMA) {
		// RFC 5997 3: a Status-Server without Message-Authenticator is
		// silently discarded, whatever the client's configuration.
		s.C.MissingMA.Add(1)
		s.logRefused(cl.name, "missing Message-Authenticator", "client", cl.name, "from", from.String())
		return nil
	}
	pkt, err := radius.Parse(b, cl.secret)
	if err != nil {
		s.C.Malformed.Add(1)
		return nil
	}
	var out *radius.Packet
	switch {
	case code == codeStatusServer:
		// RFC 5997: the server is alive. Answered without touching
		// users, addresses or sessions: Access-Accept on the
		// authentication port, Accounting-Response on the accounting one.
		rc := radius.CodeAccessAccept
		if onAcct {
			rc = radius.CodeAccountingResponse
		}
		out = pkt.Response(rc)
	case code == codeAccessReq:
		out = s.access(ctx, pkt)
		if out != nil && out.Code == radius.CodeAccessReject {
			why := rfc2865.ReplyMessage_GetString(out)
			s.logRefused(cl.name+"\x00"+why, "radius reject", "reason", why, "user", rfc2865.UserName_GetString(pkt),
				"device", rfc2865.CallingStationID_GetString(pkt), "client", cl.name, "from", from.String())
		}
	default:
		out = s.accounting(ctx, pkt, from, cl)
	}
	if out == nil {
		return nil
	}
	for _, a := range pkt.Attributes { // RFC 2865 5.33: Proxy-State copied unmodified
		if a.Type == attrProxyState {
			out.Attributes = append(out.Attributes, a)
		}
	}
	enc, err := encodeResponse(out, code == codeAcctReq)
	if err != nil {
		s.C.SendErrors.Add(1)
		return nil
	}
	return enc
}

// RejectLogEvery is how often one kind of refusal is logged per client.
const RejectLogEvery = 10 * time.Second

// logRefused writes a warning for a refused request, rate-limited per key
// (a client and a reason); attrs are slog key-value pairs.
func (s *Server) logRefused(key, msg string, attrs ...any) {
	ok, held := s.limit.Allow(msg + "\x00" + key)
	if !ok {
		return
	}
	if held > 0 {
		attrs = append(attrs, "suppressed", held)
	}
	s.log.Warn(msg, attrs...)
}

func (s *Server) reject(pkt *radius.Packet, why string) *radius.Packet {
	s.C.Rejects.Add(1)
	r := pkt.Response(radius.CodeAccessReject)
	if len(why) > 253 {
		why = why[:253]
	}
	_ = rfc2865.ReplyMessage_SetString(r, why)
	return r
}

// access authenticates and assigns an address (FIG. 3, FIG. 5).
func (s *Server) access(ctx context.Context, pkt *radius.Packet) *radius.Packet {
	name := rfc2865.UserName_GetString(pkt)
	if name == "" {
		return s.reject(pkt, "missing User-Name")
	}
	var u User
	var err error
	if pw, ok := pkt.Lookup(rfc2865.UserPassword_Type); ok {
		plain, perr := radius.UserPassword(pw, pkt.Secret, pkt.Authenticator[:])
		if perr != nil {
			return s.reject(pkt, "malformed User-Password")
		}
		u, err = s.users.CheckPAP(name, plain)
	} else if cp, ok := pkt.Lookup(rfc2865.CHAPPassword_Type); ok {
		challenge := rfc2865.CHAPChallenge_Get(pkt)
		if len(challenge) == 0 {
			challenge = pkt.Authenticator[:]
		}
		u, err = s.users.CheckCHAP(name, cp, challenge)
	} else {
		return s.reject(pkt, "no User-Password or CHAP-Password")
	}
	if err != nil {
		if errors.Is(err, ErrUnknownUser) || errors.Is(err, ErrBadPassword) {
			// One text for both: do not tell which user names exist.
			return s.reject(pkt, "authentication failed: unknown user or wrong password")
		}
		return s.reject(pkt, "authentication failed: "+err.Error())
	}
	device := rfc2865.CallingStationID_GetString(pkt)
	switch {
	case device == "" && u.DeviceID == "":
		return s.reject(pkt, "missing Calling-Station-Id (mobile device id)")
	case device == "":
		device = u.DeviceID
	case u.DeviceID != "" && device != u.DeviceID:
		return s.reject(pkt, "Calling-Station-Id does not match the user's mobile device id")
	}
	gr, seq, err := s.pool.AssignFamily(device, u.ID, requestFamily(u, pkt))
	if err != nil {
		return s.reject(pkt, "no address: "+err.Error())
	}
	if !s.durable(ctx, seq) {
		return nil
	}
	s.C.Accepts.Add(1)
	r := pkt.Response(radius.CodeAccessAccept)
	if gr.V4.IP.IsValid() {
		_ = rfc2865.FramedIPAddress_Set(r, gr.V4.IP.AsSlice())
	}
	if gr.V6.IP.IsValid() {
		SetIPv6(r, gr.V6.Prefix())
	}
	if s.cfg.SessionTimeout > 0 {
		_ = rfc2865.SessionTimeout_Set(r, rfc2865.SessionTimeout(s.cfg.SessionTimeout/time.Second))
	}
	if s.cfg.AcctInterimInterval > 0 {
		_ = rfc2869.AcctInterimInterval_Set(r, rfc2869.AcctInterimInterval(s.cfg.AcctInterimInterval/time.Second))
	}
	return r
}

// requestFamily is what a login gets: the user's stack, else what the
// Access-Request hints at, else IPv4.
func requestFamily(u User, pkt *radius.Packet) Family {
	if u.Stack != "" {
		if f, err := ParseFamily(u.Stack); err == nil {
			return f
		}
	}
	var f Family
	if _, ok := pkt.Lookup(rfc2865.FramedIPAddress_Type); ok {
		f |= FamilyIPv4
	}
	for _, t := range []radius.Type{rfc3162.FramedIPv6Prefix_Type, rfc6911.FramedIPv6Address_Type, rfc3162.FramedInterfaceID_Type} {
		if _, ok := pkt.Lookup(t); ok {
			f |= FamilyIPv6
		}
	}
	if f == 0 {
		f = FamilyIPv4
	}
	return f
}

func (s *Server) durable(ctx context.Context, seq uint64) bool {
	if seq == 0 {
		return true
	}
	if c, ok := s.dur.(interface{ Committed(uint64) bool }); ok && c.Committed(seq) {
		return true // fast path: no timer, no context
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.DurableTimeout)
	err := s.dur.Wait(wctx, seq)
	cancel()
	if err != nil {
		s.C.NotDurable.Add(1)
		return false
	}
	return true
}

func (s *Server) accounting(ctx context.Context, pkt *radius.Packet, from netip.AddrPort, cl *client) *radius.Packet {
	r := AcctRequest{
		Status:      rfc2866.AcctStatusType_Get(pkt),
		SessionID:   rfc2866.AcctSessionID_GetString(pkt),
		Device:      rfc2865.CallingStationID_GetString(pkt),
		User:        rfc2865.UserName_GetString(pkt),
		Cause:       rfc2866.AcctTerminateCause_Get(pkt),
		InOctets:    uint64(rfc2866.AcctInputOctets_Get(pkt)) | uint64(rfc2869.AcctInputGigawords_Get(pkt))<<32,
		OutOctets:   uint64(rfc2866.AcctOutputOctets_Get(pkt)) | uint64(rfc2869.AcctOutputGigawords_Get(pkt))<<32,
		InPackets:   uint64(rfc2866.AcctInputPackets_Get(pkt)),
		OutPackets:  uint64(rfc2866.AcctOutputPackets_Get(pkt)),
		SessionTime: uint32(rfc2866.AcctSessionTime_Get(pkt)),
		NAS:         rfc2865.NASIdentifier_GetString(pkt),
		NASAddr:     from.Addr().Unmap(),
		LBMAC:       cl.lbMAC,
	}
	if ip, err := rfc2865.FramedIPAddress_Lookup(pkt); err == nil {
		if a, ok := netip.AddrFromSlice(ip); ok {
			r.IP = a.Unmap()
		}
	}
	r.IP6 = AcctIPv6(pkt)
	if r.NAS == "" {
		if ip, err := rfc2865.NASIPAddress_Lookup(pkt); err == nil {
			r.NAS = ip.String()
		} else {
			r.NAS = from.Addr().Unmap().String()
		}
	}
	seq, err := s.acct.Account(&r)
	if err != nil || !s.durable(ctx, seq) {
		s.C.AcctDropped.Add(1)
		return nil
	}
	s.C.AcctResponses.Add(1)
	return pkt.Response(radius.CodeAccountingResponse)
}

// AcctIPv6 is the IPv6 prefix or address a packet names:
// Framed-IPv6-Prefix (RFC 3162), else Framed-IPv6-Address (RFC 6911, as
// a /128); invalid when it names none, or only a malformed one.
func AcctIPv6(pkt *radius.Packet) netip.Prefix {
	if n, err := rfc3162.FramedIPv6Prefix_Lookup(pkt); err == nil && n != nil {
		if a, ok := netip.AddrFromSlice(n.IP); ok && a.Is6() && !a.Is4In6() {
			bits, _ := n.Mask.Size()
			if p, err := a.Prefix(bits); err == nil {
				return p
			}
		}
	}
	if ip, err := rfc6911.FramedIPv6Address_Lookup(pkt); err == nil {
		if a, ok := netip.AddrFromSlice(ip); ok && a.Is6() && !a.Is4In6() {
			return netip.PrefixFrom(a, 128)
		}
	}
	return netip.Prefix{}
}

// SetIPv6 writes p into a packet: a /128 as Framed-IPv6-Address, a
// shorter prefix as Framed-IPv6-Prefix; nothing for the zero prefix.
func SetIPv6(pkt *radius.Packet, p netip.Prefix) {
	switch {
	case !p.IsValid():
	case p.IsSingleIP():
		_ = rfc6911.FramedIPv6Address_Set(pkt, p.Addr().AsSlice())
	default:
		_ = rfc3162.FramedIPv6Prefix_Set(pkt, &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 128)})
	}
}

// Close closes the sockets (Serve does it when its context ends).
func (s *Server) Close() {
	if s.authConn != nil {
		s.authConn.Close()
	}
	if s.acctConn != nil {
		s.acctConn.Close()
	}
}
