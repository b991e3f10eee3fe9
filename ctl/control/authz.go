package control

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"samepath/ctl/aaa"
	"samepath/ctl/api"
	"samepath/ctl/store"
)

// authzKey is where T8 and T9 live in the store's meta bucket.
const authzKey = "authz"

// storedAuthz is the stored form of the tables.
type storedAuthz struct {
	Version uint64      `json:"version"`
	T9      []api.T9Row `json:"t9"`
	T8      []api.T8Row `json:"t8"`
}

// NormalizeAuthz checks T9 and T8 with a gateway's rules (a T9 row needs
// an IP address without zone and a service type, each address at most
// once; a T8 row needs a device and a service type) and returns them in
// canonical form: addresses unmapped and printed the netip way, T9 sorted
// by address, T8 by device then service type. A (device, service type)
// pair listed twice is an error here, though a gateway would take the
// last: the control process keeps one answer per pair.
func NormalizeAuthz(t9 []api.T9Row, t8 []api.T8Row) ([]api.T9Row, []api.T8Row, error) {
	type t9e struct {
		a  netip.Addr
		st string
	}
	rows9 := make([]t9e, 0, len(t9))
	seen9 := map[netip.Addr]bool{}
	for _, r := range t9 {
		a, err := netip.ParseAddr(strings.TrimSpace(r.Rep))
		if err != nil {
			return nil, nil, fmt.Errorf("t9 rep %q: %w", r.Rep, err)
		}
		if a.Zone() != "" {
			return nil, nil, fmt.Errorf("t9 rep %q: a representative address has no zone", r.Rep)
		}
		a = a.Unmap()
		if r.ServiceType == "" {
			return nil, nil, fmt.Errorf("t9 rep %s: service type is empty", a)
		}
		if seen9[a] {
			return nil, nil, fmt.Errorf("t9: %s listed twice", a)
		}
		seen9[a] = true
		rows9 = append(rows9, t9e{a, r.ServiceType})
	}
	slices.SortFunc(rows9, func(x, y t9e) int { return x.a.Compare(y.a) })
	out9 := make([]api.T9Row, len(rows9))
	for i, r := range rows9 {
		out9[i] = api.T9Row{Rep: r.a.String(), ServiceType: r.st}
	}
	out8 := make([]api.T8Row, 0, len(t8))
	seen8 := map[[2]string]bool{}
	for _, r := range t8 {
		if r.Device == "" || r.ServiceType == "" {
			return nil, nil, fmt.Errorf("t8 row %+v: want a device and a service type", r)
		}
		k := [2]string{r.Device, r.ServiceType}
		if seen8[k] {
			return nil, nil, fmt.Errorf("t8: device %s, service type %s listed twice", r.Device, r.ServiceType)
		}
		seen8[k] = true
		out8 = append(out8, r)
	}
	slices.SortFunc(out8, func(x, y api.T8Row) int {
		return cmp.Or(cmp.Compare(x.Device, y.Device), cmp.Compare(x.ServiceType, y.ServiceType))
	})
	return out9, out8, nil
}

// AuthzTables holds the service authorization tables the control process
// owns (R-AUTH-1): T9 (representative IP -> service type, FIG. 27) and
// T8 (device x service type -> allowed, FIG. 26). Every change is stored
// (one meta record, the whole tables), given a new version, and announced
// to onChange once durable; AuthzSync pushes the tables to the gateways.
//
// Until the tables are managed (set by the configuration's authz section
// or any API change), the control process leaves the gateways' own tables
// alone. Safe for concurrent use.
type AuthzTables struct {
	st *store.Store

	mu       sync.Mutex
	cur      storedAuthz // slices never modified in place: snapshots share them
	managed  bool
	onChange func()
}

// NewAuthzTables loads the stored tables, then applies seed (the
// configuration's rows: each replaces the stored row of the same key, T9
// by address, T8 by device and service type; other stored rows stay).
// A non-empty seed makes the tables managed.
func NewAuthzTables(st *store.Store, seed9 []api.T9Row, seed8 []api.T8Row) (*AuthzTables, error) {
	a := &AuthzTables{st: st}
	b, err := st.Get(store.BucketMeta, []byte(authzKey))
	if err != nil {
		return nil, fmt.Errorf("load authz: %w", err)
	}
	if b != nil {
		if err := json.Unmarshal(b, &a.cur); err != nil {
			return nil, fmt.Errorf("load authz: %w", err)
		}
		if a.cur.T9, a.cur.T8, err = NormalizeAuthz(a.cur.T9, a.cur.T8); err != nil {
			return nil, fmt.Errorf("load authz: %w", err)
		}
		a.managed = true
	} else {
		a.cur.T9, a.cur.T8 = []api.T9Row{}, []api.T8Row{}
	}
	if len(seed9) == 0 && len(seed8) == 0 {
		return a, nil
	}
	s9, s8, err := NormalizeAuthz(seed9, seed8)
	if err != nil {
		return nil, fmt.Errorf("config authz: %w", err)
	}
	t9, t8 := slices.Clone(a.cur.T9), slices.Clone(a.cur.T8)
	for _, r := range s9 {
		t9 = putT9(t9, r)
	}
	for _, r := range s8 {
		t8 = putT8(t8, r)
	}
	if t9, t8, err = NormalizeAuthz(t9, t8); err != nil {
		return nil, fmt.Errorf("config authz: %w", err)
	}
	if a.managed && slices.Equal(t9, a.cur.T9) && slices.Equal(t8, a.cur.T8) {
		return a, nil // the same tables as last time: same version
	}
	if _, err := a.Replace(t9, t8); err != nil {
		return nil, err
	}
	return a, nil
}

// OnChange sets the function called (on the store's commit goroutine,
// so it must not block) after each change is durable.
func (a *AuthzTables) OnChange(f func()) {
	a.mu.Lock()
	a.onChange = f
	a.mu.Unlock()
}

// Get returns the tables, their version (0: never set) and whether the
// control process manages the gateways' tables. The slices are shared:
// read only.
func (a *AuthzTables) Get() (t api.Authz, version uint64, managed bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return api.Authz{T9: a.cur.T9, T8: a.cur.T8}, a.cur.Version, a.managed
}

// Replace sets both tables; it returns the store sequence to wait for.
func (a *AuthzTables) Replace(t9 []api.T9Row, t8 []api.T8Row) (uint64, error) {
	return a.edit(func([]api.T9Row, []api.T8Row) ([]api.T9Row, []api.T8Row, error) { return t9, t8, nil })
}

// PutT9 adds or replaces the T9 row of r.Rep.
func (a *AuthzTables) PutT9(r api.T9Row) (uint64, error) {
	return a.edit(func(t9 []api.T9Row, t8 []api.T8Row) ([]api.T9Row, []api.T8Row, error) {
		n9, _, err := NormalizeAuthz([]api.T9Row{r}, nil)
		if err != nil {
			return nil, nil, err
		}
		return putT9(t9, n9[0]), t8, nil
	})
}

// DeleteT9 removes the T9 row of rep.
func (a *AuthzTables) DeleteT9(rep string) (uint64, error) {
	return a.edit(func(t9 []api.T9Row, t8 []api.T8Row) ([]api.T9Row, []api.T8Row, error) {
		n9, _, err := NormalizeAuthz([]api.T9Row{{Rep: rep, ServiceType: "-"}}, nil)
		if err != nil {
			return nil, nil, err
		}
		i := slices.IndexFunc(t9, func(x api.T9Row) bool { return x.Rep == n9[0].Rep })
		if i < 0 {
			return nil, nil, fmt.Errorf("t9 rep %s: %w", n9[0].Rep, aaa.ErrNotFound)
		}
		return slices.Delete(t9, i, i+1), t8, nil
	})
}

// PutT8 adds or replaces the T8 row of (r.Device, r.ServiceType).
func (a *AuthzTables) PutT8(r api.T8Row) (uint64, error) {
	return a.edit(func(t9 []api.T9Row, t8 []api.T8Row) ([]api.T9Row, []api.T8Row, error) {
		return t9, putT8(t8, r), nil
	})
}

// DeleteT8 removes the T8 row of (device, serviceType): the device no
// longer holds an order for it, which a gateway treats as not allowed.
func (a *AuthzTables) DeleteT8(device, serviceType string) (uint64, error) {
	return a.edit(func(t9 []api.T9Row, t8 []api.T8Row) ([]api.T9Row, []api.T8Row, error) {
		i := slices.IndexFunc(t8, func(x api.T8Row) bool { return x.Device == device && x.ServiceType == serviceType })
		if i < 0 {
			return nil, nil, fmt.Errorf("t8 device %s, service type %s: %w", device, serviceType, aaa.ErrNotFound)
		}
		return t9, slices.Delete(t8, i, i+1), nil
	})
}

func putT9(t9 []api.T9Row, r api.T9Row) []api.T9Row {
	if i := slices.IndexFunc(t9, func(x api.T9Row) bool { return x.Rep == r.Rep }); i >= 0 {
		t9[i] = r
		return t9
	}
	return append(t9, r)
}

func putT8(t8 []api.T8Row, r api.T8Row) []api.T8Row {
	if i := slices.IndexFunc(t8, func(x api.T8Row) bool { return x.Device == r.Device && x.ServiceType == r.ServiceType }); i >= 0 {
		t8[i] = r
		return t8
	}
	return append(t8, r)
}

// edit applies f to copies of the tables, checks the result, stores it
// under the next version and makes it current. The onChange callback runs
// once the change is durable.
func (a *AuthzTables) edit(f func(t9 []api.T9Row, t8 []api.T8Row) ([]api.T9Row, []api.T8Row, error)) (uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t9, t8, err := f(slices.Clone(a.cur.T9), slices.Clone(a.cur.T8))
	if err != nil {
		return 0, err
	}
	if t9, t8, err = NormalizeAuthz(t9, t8); err != nil {
		return 0, err
	}
	next := storedAuthz{Version: a.cur.Version + 1, T9: t9, T8: t8}
	b, err := json.Marshal(next)
	if err != nil {
		return 0, fmt.Errorf("encode authz: %w", err)
	}
	a.cur, a.managed = next, true
	seq := a.st.Enqueue([]store.Op{store.Put(store.BucketMeta, []byte(authzKey), b)}, nil, func() {
		a.mu.Lock()
		f := a.onChange
		a.mu.Unlock()
		if f != nil {
			f()
		}
	})
	return seq, nil
}
