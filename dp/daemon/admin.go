package daemon

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"

	"samepath/ctl/api"
	"samepath/dp/balance"
)

// Servers' administrative state (up, drain, maint: balance.AdminState)
// and weight are the operator's, changed at run time through PUT
// /v1/services/server and /v1/services/weight and kept apart from health
// (the prober's). They live in memory only: at a restart the gateway
// starts from its configuration file's services (gw.services: state,
// weight), as HAProxy does without a server-state file. To keep a change,
// write it into the file too.

// weightRoutes adds PUT /v1/services/weight.
func weightRoutes(v1 *http.ServeMux, t *balance.Table, log *slog.Logger) {
	v1.HandleFunc("PUT /v1/services/weight", func(w http.ResponseWriter, r *http.Request) {
		var sw api.ServerWeight
		if !decode(w, r, &sw, "weight") {
			return
		}
		ap, err := netip.ParseAddrPort(sw.Addr)
		if err != nil {
			fail(w, http.StatusBadRequest, fmt.Errorf("addr: %w", err))
			return
		}
		was, err := t.SetWeightWas(sw.Service, ap, sw.Weight)
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		if was != sw.Weight {
			log.Info("server weight changed", "service", sw.Service, "server", ap.String(), "weight", sw.Weight, "was", was)
		}
		reply(w, api.Ack{OK: true})
	})
}

// endServerFlows has the worker end the flows still on a server put into
// maint (dp.GW.EndServerFlows).
func (s *gwState) endServerFlows(service string, addr netip.AddrPort) {
	if id, ok := s.services.ID(service); ok {
		s.gw.EndServerFlows(id, addr)
	}
}

// serverKey names a server of a service.
type serverKey struct {
	service string
	addr    netip.AddrPort
}

// serverAdmin is what adminStates keeps of a server.
type serverAdmin struct {
	state  balance.AdminState
	weight int
}

// adminStates is every server's administrative state and weight.
func adminStates(t *balance.Table) map[serverKey]serverAdmin {
	m := map[serverKey]serverAdmin{}
	for _, s := range t.Status() {
		for _, v := range s.Servers {
			m[serverKey{s.Name, v.Addr}] = serverAdmin{v.Admin, v.Weight}
		}
	}
	return m
}

// logAdminChanges logs the state and weight changes a whole-table
// replace (PUT /v1/services) made to servers it kept, as PUT
// /v1/services/server and /weight log theirs, and tells maint of servers
// it put into maint. Servers added or removed are not state changes.
func logAdminChanges(log *slog.Logger, before, after map[serverKey]serverAdmin, maint func(string, netip.AddrPort)) {
	for k, a := range after {
		b, ok := before[k]
		if !ok {
			continue
		}
		if a.state != b.state {
			log.Info("server state changed", "service", k.service, "server", k.addr.String(), "state", a.state.String(), "was", b.state.String())
			if a.state == balance.AdminMaint && maint != nil {
				maint(k.service, k.addr)
			}
		}
		if a.weight != b.weight {
			log.Info("server weight changed", "service", k.service, "server", k.addr.String(), "weight", a.weight, "was", b.weight)
		}
	}
}
