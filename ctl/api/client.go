package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls one samepathd's control API.
type Client struct {
	// Base is the API's base URL, e.g. "http://127.0.0.1:9180".
	Base string
	// Token, when set, is sent as "Authorization: Bearer TOKEN".
	Token string
	HTTP  *http.Client
}

// NewClient returns a client for base with a 5 s timeout.
func NewClient(base string) *Client {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &Client{Base: strings.TrimRight(base, "/"), HTTP: &http.Client{Timeout: 5 * time.Second}}
}

// Do sends body (if not nil) as JSON and decodes the answer into out (if not nil).
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		he := &HTTPError{Method: method, Path: path, Code: resp.StatusCode, Status: resp.Status}
		var e Error
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			he.Msg = e.Error
		}
		return he
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// HTTPError is an answer outside 2xx: Do returns it (errors.As finds it
// through wrapping), so that callers can log and count the status.
type HTTPError struct {
	Method, Path string
	Code         int    // 401, 503, ...
	Status       string // "401 Unauthorized"
	Msg          string // the answer's api.Error text, if any
}

func (e *HTTPError) Error() string {
	if e.Msg != "" {
		return fmt.Sprintf("%s %s: %s: %s", e.Method, e.Path, e.Status, e.Msg)
	}
	return fmt.Sprintf("%s %s: %s", e.Method, e.Path, e.Status)
}

// HTTPStatus is the status code (lograte.Pushes logs it).
func (e *HTTPError) HTTPStatus() int { return e.Code }

func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.Do(ctx, http.MethodGet, "/v1/status", nil, &s)
}

func (c *Client) Counters(ctx context.Context) (Counters, error) {
	var s Counters
	return s, c.Do(ctx, http.MethodGet, "/v1/counters", nil, &s)
}

func (c *Client) T4(ctx context.Context) (T4, error) {
	var t T4
	return t, c.Do(ctx, http.MethodGet, "/v1/t4", nil, &t)
}

func (c *Client) SetT4(ctx context.Context, t T4) error {
	return c.Do(ctx, http.MethodPut, "/v1/t4", t, nil)
}

func (c *Client) PutT4Row(ctx context.Context, r T4Row) error {
	return c.Do(ctx, http.MethodPut, "/v1/t4/row", r, nil)
}

func (c *Client) DeleteT4Row(ctx context.Context, cidr string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/t4/row?range="+url.QueryEscape(cidr), nil, nil)
}

func (c *Client) SetGatewayState(ctx context.Context, mac, state string) error {
	return c.Do(ctx, http.MethodPut, "/v1/gateways/state", GatewayState{MAC: mac, State: state}, nil)
}

func (c *Client) SessionEvent(ctx context.Context, ev SessionEvent) error {
	return c.Do(ctx, http.MethodPost, "/v1/sessions/events", ev, nil)
}

func (c *Client) Services(ctx context.Context) (Services, error) {
	var s Services
	return s, c.Do(ctx, http.MethodGet, "/v1/services", nil, &s)
}

func (c *Client) SetServices(ctx context.Context, s Services) error {
	return c.Do(ctx, http.MethodPut, "/v1/services", s, nil)
}

func (c *Client) SetPolicy(ctx context.Context, service, policy string) error {
	return c.Do(ctx, http.MethodPut, "/v1/services/policy", PolicyChange{Service: service, Policy: policy}, nil)
}

func (c *Client) SetServerState(ctx context.Context, service, addr, state string) error {
	return c.Do(ctx, http.MethodPut, "/v1/services/server", ServerState{Service: service, Addr: addr, State: state}, nil)
}

func (c *Client) GWSessions(ctx context.Context) (GWSessions, error) {
	var s GWSessions
	return s, c.Do(ctx, http.MethodGet, "/v1/sessions", nil, &s)
}

func (c *Client) Flows(ctx context.Context, limit int) (Flows, error) {
	return c.FlowsMatching(ctx, limit, FlowFilter{})
}

// FlowsMatching is Flows of the records that pass filter (Total then
// counts those).
func (c *Client) FlowsMatching(ctx context.Context, limit int, filter FlowFilter) (Flows, error) {
	var f Flows
	path := fmt.Sprintf("/v1/flows?limit=%d", limit)
	if q := filter.Query(); q != "" {
		path += "&" + q
	}
	return f, c.Do(ctx, http.MethodGet, path, nil, &f)
}

func (c *Client) Authz(ctx context.Context) (Authz, error) {
	var a Authz
	return a, c.Do(ctx, http.MethodGet, "/v1/authz", nil, &a)
}

func (c *Client) SetAuthz(ctx context.Context, a Authz) error {
	return c.Do(ctx, http.MethodPut, "/v1/authz", a, nil)
}
