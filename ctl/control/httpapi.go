package control

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"samepath/ctl/aaa"
	"samepath/ctl/api"
	"samepath/ctl/session"
)

// The control API (JSON; errors are {"error": "..."}):
//
//	GET    /healthz                      "ok"
//	GET    /metrics                      Prometheus
//	GET    /v1/status                    Status
//	GET    /v1/counters                  Counters
//	GET    /v1/health                    HealthReport
//	GET    /v1/lbs                       []LBInfo
//	GET    /v1/lbs/gateway-states        []api.GatewayState (what every LB's T4 is to say; a starting LB reads it)
//	GET    /v1/gateways                  []aaa.Gateway          (T1)
//	PUT    /v1/gateways                  aaa.GatewayConfig -> aaa.Gateway
//	GET    /v1/gateways/{name}           aaa.Gateway
//	DELETE /v1/gateways/{name}
//	PUT    /v1/gateways/{name}/admin     AdminState -> aaa.Gateway
//	GET    /v1/users                     []aaa.User (no credentials)    (T2)
//	PUT    /v1/users                     aaa.User (password in clear) -> aaa.User
//	GET    /v1/users/{id}                aaa.User
//	DELETE /v1/users/{id}
//	GET    /v1/assignments               []aaa.Assignment
//	GET    /v1/sessions                  []session.Session      (T3)
//	GET    /v1/sessions/{id}             session.Session
//	DELETE /v1/sessions/{id}             terminate (Admin-Reset) -> Terminated (the NAS's answer)
//	GET    /v1/authz                     api.Authz              (T9, T8)
//	PUT    /v1/authz                     api.Authz -> api.Authz (replace both)
//	PUT    /v1/authz/t9                  api.T9Row -> api.Authz (add or replace by rep)
//	DELETE /v1/authz/t9?rep=IP           -> api.Authz
//	PUT    /v1/authz/t8                  api.T8Row -> api.Authz (add or replace by device, service type)
//	DELETE /v1/authz/t8?device=D&service_type=S -> api.Authz
//	GET    /v1/authz/status              AuthzStatus (push state per gateway)
//
// A request body is exactly one JSON object of the endpoint's type, with
// no unknown field and nothing after it, and PUT /v1/authz names both
// tables ([] empties one) (api.DecodeObject), or the answer is 400 and
// nothing changes. A change is answered once it is durable.
// With a token configured every /v1 call needs "Authorization: Bearer
// TOKEN".
func (c *Control) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(c))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	v1 := http.NewServeMux()
	v1.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, Status{Version: Version, UptimeSec: int64(time.Since(c.started) / time.Second), Auth: c.AuthAddr().String(), Acct: c.AcctAddr().String(),
			Sessions: c.Mgr.Len(), Users: c.Users.Len(), Gateways: len(c.Pool.Gateways())})
	})
	v1.HandleFunc("GET /v1/counters", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.Counters()) })
	v1.HandleFunc("GET /v1/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, HealthReport{Targets: c.Monitor.Statuses(), LBs: c.LBSync.Statuses(), T4: c.T4.Rows()})
	})
	v1.HandleFunc("GET /v1/lbs", func(w http.ResponseWriter, r *http.Request) {
		out := []LBInfo{}
		for _, l := range c.LBSync.LBs() {
			out = append(out, LBInfo{Name: l.Name, API: l.URL})
		}
		writeJSON(w, out)
	})
	v1.HandleFunc("GET /v1/lbs/gateway-states", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.LBSync.Desired()) })
	v1.HandleFunc("GET /v1/gateways", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.Pool.Gateways()) })
	v1.HandleFunc("GET /v1/gateways/{name}", func(w http.ResponseWriter, r *http.Request) {
		g, ok := c.Pool.Gateway(r.PathValue("name"))
		if !ok {
			writeErr(w, http.StatusNotFound, "no such gateway")
			return
		}
		writeJSON(w, g)
	})
	v1.HandleFunc("PUT /v1/gateways", func(w http.ResponseWriter, r *http.Request) {
		var g aaa.GatewayConfig
		if !readJSON(w, r, &g) {
			return
		}
		old, existed := c.Pool.Gateway(g.Name)
		seq, err := c.Pool.PutGateway(g)
		if !c.done(w, r, seq, err) {
			return
		}
		ng, _ := c.Pool.Gateway(g.Name)
		if !existed || old.GatewayConfig != ng.GatewayConfig {
			c.log.Info("gateway configured", "gateway", ng.Name, "new", !existed, "range", ng.Range, "mac", ng.MAC, "admin", ng.Admin, "lb_state", aaa.LBState(ng))
		}
		if existed && old.MAC != ng.MAC && old.MAC != "" {
			c.LBSync.Set(old.MAC, api.StateDown)
		}
		c.LBSync.Set(ng.MAC, aaa.LBState(ng))
		c.AuthzSync.Reconcile()
		writeJSON(w, ng)
	})
	v1.HandleFunc("DELETE /v1/gateways/{name}", func(w http.ResponseWriter, r *http.Request) {
		g, _ := c.Pool.Gateway(r.PathValue("name"))
		seq, err := c.Pool.DeleteGateway(r.PathValue("name"))
		if !c.done(w, r, seq, err) {
			return
		}
		c.log.Info("gateway deleted", "gateway", g.Name, "mac", g.MAC)
		c.LBSync.Set(g.MAC, api.StateDown)
		c.AuthzSync.Reconcile()
		writeJSON(w, api.Ack{OK: true})
	})
	v1.HandleFunc("PUT /v1/gateways/{name}/admin", func(w http.ResponseWriter, r *http.Request) {
		var a AdminState
		if !readJSON(w, r, &a) {
			return
		}
		old, _ := c.Pool.Gateway(r.PathValue("name"))
		g, seq, err := c.Pool.SetAdmin(r.PathValue("name"), a.Admin)
		if !c.done(w, r, seq, err) {
			return
		}
		if old.Admin != g.Admin {
			c.log.Info("gateway admin state changed", "gateway", g.Name, "from", old.Admin, "admin", g.Admin, "lb_state", aaa.LBState(g))
		}
		c.LBSync.Set(g.MAC, aaa.LBState(g))
		writeJSON(w, g)
	})
	v1.HandleFunc("GET /v1/users", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.usersView()) })
	v1.HandleFunc("GET /v1/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		u, ok := c.Users.Get(r.PathValue("id"))
		if !ok {
			writeErr(w, http.StatusNotFound, "no such user")
			return
		}
		writeJSON(w, c.userView(u))
	})
	v1.HandleFunc("PUT /v1/users", func(w http.ResponseWriter, r *http.Request) {
		var u aaa.User
		if !readJSON(w, r, &u) {
			return
		}
		u.Hash, u.Secret = "", "" // credentials come in as Password only
		seq, err := c.Users.Put(u)
		if !c.done(w, r, seq, err) {
			return
		}
		nu, _ := c.Users.Get(u.ID)
		writeJSON(w, c.userView(nu))
	})
	v1.HandleFunc("DELETE /v1/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		seq, err := c.Users.Delete(r.PathValue("id"))
		if c.done(w, r, seq, err) {
			writeJSON(w, api.Ack{OK: true})
		}
	})
	v1.HandleFunc("GET /v1/assignments", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.Pool.Assignments()) })
	v1.HandleFunc("GET /v1/sessions", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.Mgr.List()) })
	v1.HandleFunc("GET /v1/sessions/{id}", func(w http.ResponseWriter, r *http.Request) {
		s, ok := c.Mgr.Get(r.PathValue("id"))
		if !ok {
			writeErr(w, http.StatusNotFound, "no such session")
			return
		}
		writeJSON(w, s)
	})
	v1.HandleFunc("DELETE /v1/sessions/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		s, _ := c.Mgr.Get(id)
		seq, err := c.Mgr.Terminate(id, "Admin-Reset")
		if !c.done(w, r, seq, err) {
			return
		}
		// The NAS hangs up too (RFC 5176); the answer says whether it did.
		res := Terminated{OK: true, Session: id, Disconnect: DisconnectNotSent}
		if ch := c.disconnect(s); ch != nil {
			res.NAS = s.NASAddr.String()
			select {
			case err := <-ch:
				res.Disconnect, res.DisconnectError = disconnectOutcome(err)
			case <-r.Context().Done():
				return // the client left; the Disconnect-Request goes on
			}
		}
		writeJSON(w, res)
	})
	c.authzHandlers(v1)
	mux.Handle("/v1/", c.auth(v1))
	return mux
}

// UserView is a T2 row as shown: no credentials, with its assigned address (FIG. 8).
type UserView struct {
	aaa.User
	AssignedIP string `json:"assigned_ip,omitempty"`
	// AssignedIP6 is the user's IPv6 prefix or address.
	AssignedIP6 string `json:"assigned_ip6,omitempty"`
}

func (c *Control) userView(u aaa.User) UserView {
	v := UserView{User: u.Public()}
	g := c.Pool.UserGrant(u.ID)
	if g.V4.IP.IsValid() {
		v.AssignedIP = g.V4.IP.String()
	}
	if g.V6.IP.IsValid() {
		v.AssignedIP6 = session.EventIP6(g.V6.Prefix())
	}
	return v
}

func (c *Control) usersView() []UserView {
	us := c.Users.List()
	out := make([]UserView, 0, len(us))
	for _, u := range us {
		out = append(out, c.userView(u))
	}
	return out
}

// Counters collects every counter of the process.
func (c *Control) Counters() Counters {
	return Counters{Radius: c.Radius.C.Snapshot(), Pool: c.Pool.Counters(), Sessions: c.Mgr.Counters(), Outbox: c.Out.Counters(), SessionSync: c.SessionSync.Counters(), T4: c.T4.Counters(), Store: c.St.Stats()}
}

func (c *Control) auth(h http.Handler) http.Handler {
	if c.apiToken == "" {
		return h
	}
	want := []byte("Bearer " + c.apiToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			writeErr(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// done answers an error, or waits until seq is durable; true to go on.
func (c *Control) done(w http.ResponseWriter, r *http.Request, seq uint64, err error) bool {
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, aaa.ErrNotFound) || errors.Is(err, session.ErrNotFound) {
			code = http.StatusNotFound
		}
		writeErr(w, code, err.Error())
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := c.St.Wait(ctx, seq); err != nil {
		writeErr(w, http.StatusServiceUnavailable, "not durable: "+err.Error())
		return false
	}
	return true
}

// readJSON reads a body that is exactly one JSON object of v's shape, with
// the required fields present (api.DecodeObject); anything
// else is answered 400 and false, before the handler changes any state.
func readJSON(w http.ResponseWriter, r *http.Request, v any, required ...string) bool {
	if err := api.DecodeObject(io.LimitReader(r.Body, 1<<20), v, required...); err != nil {
		writeErr(w, http.StatusBadRequest, "bad JSON: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(api.Error{Error: strings.TrimSpace(msg)})
}

// authzHandlers serves T8/T9 (R-AUTH-1). A change is answered with the
// new tables once durable; the pushers then take it to every gateway.
func (c *Control) authzHandlers(v1 *http.ServeMux) {
	tables := func() api.Authz { t, _, _ := c.Authz.Get(); return t }
	answer := func(w http.ResponseWriter, r *http.Request, seq uint64, err error) {
		if c.done(w, r, seq, err) {
			writeJSON(w, tables())
		}
	}
	v1.HandleFunc("GET /v1/authz", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, tables()) })
	v1.HandleFunc("GET /v1/authz/status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.AuthzSync.Status()) })
	v1.HandleFunc("PUT /v1/authz", func(w http.ResponseWriter, r *http.Request) {
		var a api.Authz
		if !readJSON(w, r, &a, "t9", "t8") {
			return
		}
		seq, err := c.Authz.Replace(a.T9, a.T8) // a.Denied (a gateway's counters) is not a table
		answer(w, r, seq, err)
	})
	v1.HandleFunc("PUT /v1/authz/t9", func(w http.ResponseWriter, r *http.Request) {
		var row api.T9Row
		if !readJSON(w, r, &row) {
			return
		}
		seq, err := c.Authz.PutT9(row)
		answer(w, r, seq, err)
	})
	v1.HandleFunc("DELETE /v1/authz/t9", func(w http.ResponseWriter, r *http.Request) {
		seq, err := c.Authz.DeleteT9(r.URL.Query().Get("rep"))
		answer(w, r, seq, err)
	})
	v1.HandleFunc("PUT /v1/authz/t8", func(w http.ResponseWriter, r *http.Request) {
		var row api.T8Row
		if !readJSON(w, r, &row) {
			return
		}
		seq, err := c.Authz.PutT8(row)
		answer(w, r, seq, err)
	})
	v1.HandleFunc("DELETE /v1/authz/t8", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		seq, err := c.Authz.DeleteT8(q.Get("device"), q.Get("service_type"))
		answer(w, r, seq, err)
	})
}
