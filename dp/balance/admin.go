package balance

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// AdminState is an actual server's administrative state, the operator's
// word, kept apart from its health (the Prober's): a server takes new
// flows only when it is AdminUp and healthy. The states are HAProxy's
// ready, drain and maint:
//
//   - AdminUp: chosen for new flows.
//   - AdminDrain: no new flows; flows already on it run until they end.
//     Unlike HAProxy's drain, which still sends persistent (sticky)
//     sessions, a T7 record kept on a draining server (login and
//     service unit) is chosen anew at the session's next new flow, so
//     that a server drains within the life of its flows, not of its
//     sessions.
//   - AdminMaint: out of service, no traffic: as drain, and the gateway
//     ends the flows still on it (dp.GW.EndServerFlows, HAProxy's maint
//     followed by "shutdown sessions server").
//
// Packet-unit services choose a server for every up packet, so a drain
// takes effect for them at the next packet, as maint does.
//
// The zero value is AdminUp.
type AdminState uint8

const (
	AdminUp AdminState = iota
	AdminDrain
	AdminMaint
	NumAdminStates
)

var adminNames = [NumAdminStates]string{"up", "drain", "maint"}

// ErrBadAdminState is returned for an unknown administrative state.
var ErrBadAdminState = errors.New("unknown server state")

func (a AdminState) String() string {
	if a < NumAdminStates {
		return adminNames[a]
	}
	return fmt.Sprintf("admin(%d)", uint8(a))
}

// ParseAdminState accepts up (or ready, HAProxy's name), drain and maint
// (or down, samepath's earlier name for it), case-insensitive; "" is up.
func ParseAdminState(s string) (AdminState, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "up", "ready":
		return AdminUp, nil
	case "drain":
		return AdminDrain, nil
	case "maint", "down":
		return AdminMaint, nil
	}
	return 0, fmt.Errorf("%w %q (want up, drain or maint)", ErrBadAdminState, s)
}

// adminOf is a configured server's state (Server.Up and Server.Drain).
func adminOf(s Server) AdminState {
	switch {
	case !s.Up:
		return AdminMaint
	case s.Drain:
		return AdminDrain
	}
	return AdminUp
}

// SetAdmin sets a server's administrative state and returns the one it
// had. Health is untouched (the Prober's SetServerHealth leaves this
// state alone, and this leaves health alone). The change is published
// copy-on-write: new flows see it at their next Pick, without locks.
func (t *Table) SetAdmin(name string, addr netip.AddrPort, st AdminState) (was AdminState, err error) {
	if st >= NumAdminStates {
		return 0, fmt.Errorf("set server state: %w: %d", ErrBadAdminState, uint8(st))
	}
	err = t.modify(name, "set server state", func(s *svc) error {
		v, err := s.find(addr)
		if err == nil {
			was, v.admin = v.admin, st
		}
		return err
	})
	return was, err
}

// SetWeightWas is SetWeight returning the weight the server had.
func (t *Table) SetWeightWas(name string, addr netip.AddrPort, w int) (was int, err error) {
	if w < 1 || w > MaxWeight {
		return 0, fmt.Errorf("set weight %d: %w: want 1..%d (drain takes a server out of new choices)", w, ErrBadConfig, MaxWeight)
	}
	err = t.modify(name, "set weight", func(s *svc) error {
		v, err := s.find(addr)
		if err == nil {
			was, v.weight = v.weight, w
		}
		return err
	})
	return was, err
}
