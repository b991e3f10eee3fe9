// Package api is the wire contract of samepathd's HTTP/JSON control API and
// a client for it. samepathd serves it (loopback by default); the control
// process (samepath-control) and samepathctl call it.
//
// Endpoints (all JSON; errors are {"error": "..."} with a 4xx/5xx status).
// A request body is exactly one JSON object of the endpoint's type, with
// no unknown field and nothing after it, and a PUT that replaces a whole
// table names it (rows, services, t9 and t8; [] empties it, {} is
// refused) (DecodeObject); anything else is answered 400 and changes
// nothing:
//
//	GET    /healthz                    "ok"
//	GET    /v1/status                  Status
//	GET    /v1/counters                Counters
//	GET    /v1/runtime                 Runtime       per worker: rounds, batches, vectors per batch,
//	                                                 ns per packet, idle share (vppctl show runtime)
//	GET    /v1/t4                      T4
//	PUT    /v1/t4                      T4      replace the whole table atomically
//	PUT    /v1/t4/row                  T4Row   insert or replace the row for its range
//	DELETE /v1/t4/row?range=CIDR               delete one row
//	PUT    /v1/gateways/state          GatewayState  set one gateway's state in every row
//	POST   /v1/sessions/events         SessionEvent  (role gw) T3 notification, R-GW-7
//	GET    /v1/sessions                GWSessions    (role gw) the gateway's T3 copy
//	GET    /v1/services                Services      (role gw) T6 + T11 + T9
//	PUT    /v1/services                Services      replace the service table
//	PUT    /v1/services/policy         PolicyChange  set a service's balancing policy
//	PUT    /v1/services/server         ServerState   set a server's administrative state: up, drain or maint
//	                                                 (down: maint); run time only, see dp/daemon/admin.go
//	PUT    /v1/services/weight         ServerWeight  set a server's weight (run time only)
//	GET    /v1/flows?limit=N           Flows         (role gw) port-key NAT records (T5)
//	GET    /v1/authz                   Authz         (role gw) T9 and T8, refusals per service type
//	GET    /v1/dist?limit=N&session=ID&service=S  Dist  (role gw) T7 distribution records and counters
//	GET    /v1/lbcache?limit=N&mobile=A  LBCache     (role gw) T12 LB MAC cache per mobile
//	PUT    /v1/authz                   Authz         replace T9 and T8
//	GET    /v1/xlat                    Xlat          (role gw) translation config, packets per outcome
//	PUT    /v1/xlat                    XlatChange -> XlatConfig  change pool6, eam, rfc6791v4/v6, MTUs
//	POST   /v1/capture                 CaptureRequest  a dataplane capture: the answer is
//	                                                 pcapng (not JSON), streamed, with trailers
//
// Metrics are served separately in Prometheus format at /metrics.
package api
