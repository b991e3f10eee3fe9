package dp

import (
	"fmt"
	"net/netip"
	"sort"
	"sync/atomic"
)

// T9Row maps a representative (service providing server) address to its
// service type (FIG. 27).
type T9Row struct {
	Rep         netip.Addr
	ServiceType string
}

// T8Row says whether a mobile device may use a service type (the service
// order, FIG. 26).
type T8Row struct {
	Device      string
	ServiceType string
	Allowed     bool
}

// Authz is the gateway's service authorization (R-AUTH-1, FIG. 25): T9
// and T8. Destinations that T9 does not name are not controlled; for a
// named one the device needs a T8 row allowing its service type.
// Lookups are lock-free and allocation-free (an immutable snapshot behind
// an atomic pointer); Replace swaps in new tables.
type Authz struct {
	cur atomic.Pointer[authzSnap]
	// denied counts refusals per service type; entries are created by
	// Replace and kept across replacements.
	denied atomic.Pointer[map[string]*atomic.Uint64]
}

type authzSnap struct {
	t9     map[[16]byte]string
	t8     map[string]map[string]bool // device -> service type -> allowed
	t9Rows []T9Row
	t8Rows []T8Row
	denied map[string]*atomic.Uint64
}

// NewAuthz returns tables holding t9 and t8.
func NewAuthz(t9 []T9Row, t8 []T8Row) (*Authz, error) {
	a := &Authz{}
	m := map[string]*atomic.Uint64{}
	a.denied.Store(&m)
	if err := a.Replace(t9, t8); err != nil {
		return nil, err
	}
	return a, nil
}

// Replace swaps in new T9 and T8 tables atomically.
func (a *Authz) Replace(t9 []T9Row, t8 []T8Row) error {
	s := &authzSnap{t9: map[[16]byte]string{}, t8: map[string]map[string]bool{}}
	for _, r := range t9 {
		if !r.Rep.IsValid() || r.ServiceType == "" {
			return fmt.Errorf("t9: row %v: want an address and a service type", r)
		}
		k := r.Rep.Unmap().As16()
		if _, dup := s.t9[k]; dup {
			return fmt.Errorf("t9: %s listed twice", r.Rep)
		}
		s.t9[k] = r.ServiceType
		s.t9Rows = append(s.t9Rows, T9Row{Rep: r.Rep.Unmap(), ServiceType: r.ServiceType})
	}
	for _, r := range t8 {
		if r.Device == "" || r.ServiceType == "" {
			return fmt.Errorf("t8: row %v: want a device and a service type", r)
		}
		if s.t8[r.Device] == nil {
			s.t8[r.Device] = map[string]bool{}
		}
		s.t8[r.Device][r.ServiceType] = r.Allowed
		s.t8Rows = append(s.t8Rows, r)
	}
	sort.Slice(s.t9Rows, func(i, j int) bool { return s.t9Rows[i].Rep.Less(s.t9Rows[j].Rep) })
	// Keep every counter, add one per new service type.
	old := *a.denied.Load()
	den := make(map[string]*atomic.Uint64, len(old))
	for k, v := range old {
		den[k] = v
	}
	for _, st := range s.t9 {
		if den[st] == nil {
			den[st] = new(atomic.Uint64)
		}
	}
	a.denied.Store(&den)
	s.denied = den
	a.cur.Store(s)
	return nil
}

// Check authorizes a new user session to destination dst (16 bytes,
// IPv4-mapped) for device: it returns dst's service type ("" when T9
// does not control dst) and whether the device may use it. A refusal is
// counted under the service type.
func (a *Authz) Check(dst [16]byte, device string) (serviceType string, allowed bool) {
	s := a.cur.Load()
	st, ok := s.t9[dst]
	if !ok {
		return "", true
	}
	if s.t8[device][st] {
		return st, true
	}
	if c := s.denied[st]; c != nil {
		c.Add(1)
	}
	return st, false
}

// ServiceType returns dst's service type, "" if T9 does not name it.
func (a *Authz) ServiceType(dst [16]byte) string { return a.cur.Load().t9[dst] }

// Rows returns the tables.
func (a *Authz) Rows() ([]T9Row, []T8Row) {
	s := a.cur.Load()
	return append([]T9Row(nil), s.t9Rows...), append([]T8Row(nil), s.t8Rows...)
}

// Denied returns the refusals per service type.
func (a *Authz) Denied() map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range *a.denied.Load() {
		out[k] = v.Load()
	}
	return out
}
