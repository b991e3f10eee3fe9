package daemon

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"samepath/ctl/api"
	"samepath/nat"
)

// Backend is what the control API reads and changes. T4 is nil unless
// the role is lb.
type Backend interface {
	Status() api.Status
	Counters() api.Counters
	T4() *nat.T4
}

// gwBackend is a Backend running the gateway role.
type gwBackend interface {
	gwState() *gwState
}

// NewHandler serves the control API (ctl/api), /metrics from reg and
// /healthz. A non-empty token is required as a bearer token on /v1/.
// State changes made through it (a gateway's T4 state, a server's
// administrative state) are logged to log (nil: slog.Default).
func NewHandler(b Backend, reg *prometheus.Registry, token string, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if gb, ok := b.(gwBackend); ok && gb.gwState() != nil && !gb.gwState().sync.ready() {
			// Not up before the peers' state arrived (gw.sync.wait bounds it).
			http.Error(w, "syncing", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	v1 := http.NewServeMux()
	v1.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) { reply(w, b.Status()) })
	v1.HandleFunc("GET /v1/counters", func(w http.ResponseWriter, _ *http.Request) { reply(w, b.Counters()) })
	if b.T4() != nil {
		lbRoutes(v1, b, log)
	}
	if gb, ok := b.(gwBackend); ok && gb.gwState() != nil {
		gwRoutes(v1, gb.gwState(), log)
	}
	if rb, ok := b.(RuntimeBackend); ok {
		runtimeRoutes(v1, rb)
	}
	if cb, ok := b.(captureBackend); ok && cb.captureTarget() != nil {
		captureRoutes(v1, cb.captureTarget())
	}
	v1.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		fail(w, http.StatusNotFound, fmt.Errorf("%s %s: no such endpoint for role %s", r.Method, r.URL.Path, b.Status().Role))
	})
	var v1h http.Handler = v1
	if token != "" {
		v1h = requireToken(token, v1)
	}
	mux.Handle("/v1/", v1h)
	return mux
}

// lbRoutes adds the load balancer's T4 endpoints.
func lbRoutes(v1 *http.ServeMux, b Backend, log *slog.Logger) {
	v1.HandleFunc("GET /v1/t4", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, api.T4{Rows: APIRows(b.T4().Rows())})
	})
	v1.HandleFunc("PUT /v1/t4", func(w http.ResponseWriter, r *http.Request) {
		var t api.T4
		if !decode(w, r, &t, "rows") {
			return
		}
		rows, err := T4Rows(t.Rows)
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		change(w, b.T4().Replace(rows))
	})
	v1.HandleFunc("PUT /v1/t4/row", func(w http.ResponseWriter, r *http.Request) {
		var ar api.T4Row
		if !decode(w, r, &ar) {
			return
		}
		row, err := T4Row(ar)
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		change(w, b.T4().Put(row))
	})
	v1.HandleFunc("DELETE /v1/t4/row", func(w http.ResponseWriter, r *http.Request) {
		p, err := netip.ParsePrefix(r.URL.Query().Get("range"))
		if err != nil {
			fail(w, http.StatusBadRequest, fmt.Errorf("range: %w", err))
			return
		}
		change(w, b.T4().Delete(p))
	})
	v1.HandleFunc("PUT /v1/gateways/state", func(w http.ResponseWriter, r *http.Request) {
		var gs api.GatewayState
		if !decode(w, r, &gs) {
			return
		}
		m, err := nat.ParseMAC(gs.MAC)
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		up, err := ParseState(gs.State)
		if err != nil || gs.State == "" {
			fail(w, http.StatusBadRequest, fmt.Errorf("state %q: want up or down", gs.State))
			return
		}
		was, known := gatewayUp(b.T4().Rows(), m)
		n, err := b.T4().SetGatewayState(m, up)
		if err == nil && (!known || was != up) {
			log.Info("gateway state changed", "mac", m.String(), "state", gs.State, "rows", n)
		}
		change(w, err)
	})
}

// gatewayUp is the T4 state of gateway m (its first row's; known false
// when no row names it).
func gatewayUp(rows []nat.T4Row, m nat.MAC) (up, known bool) {
	for _, r := range rows {
		for _, g := range r.Gateways {
			if g.MAC == m {
				return g.Up, true
			}
		}
	}
	return false, false
}

func requireToken(token string, h http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			fail(w, http.StatusUnauthorized, errors.New("missing or wrong bearer token"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// decode reads a body that is exactly one JSON object of v's shape, with
// the required fields present (api.DecodeObject); anything
// else is answered 400 and false, before the handler changes any state.
func decode(w http.ResponseWriter, r *http.Request, v any, required ...string) bool {
	if err := api.DecodeObject(io.LimitReader(r.Body, 16<<20), v, required...); err != nil {
		fail(w, http.StatusBadRequest, fmt.Errorf("decode body: %w", err))
		return false
	}
	return true
}

func change(w http.ResponseWriter, err error) {
	switch {
	case err == nil:
		reply(w, api.Ack{OK: true})
	case errors.Is(err, nat.ErrNotFound):
		fail(w, http.StatusNotFound, err)
	case errors.Is(err, nat.ErrOverlap):
		fail(w, http.StatusConflict, err)
	case strings.HasPrefix(err.Error(), "t4 row"):
		fail(w, http.StatusBadRequest, err)
	default:
		fail(w, http.StatusInternalServerError, err)
	}
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(api.Error{Error: err.Error()})
}

// NewServer returns an HTTP server for h with sane timeouts.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
}
