package api

import (
	"context"
	"net/http"
)

// XlatEAM is one explicit address mapping (RFC 7757): an IPv4 prefix and
// the IPv6 prefix it maps to.
type XlatEAM struct {
	IPv4 string `json:"ipv4"`
	IPv6 string `json:"ipv6"`
}

// XlatConfig is a gateway's IPv4/IPv6 translation config (dp/xlat,
// R-TCP-3) as GET /v1/xlat shows it. Empty prefixes mean none.
type XlatConfig struct {
	Pool6         string    `json:"pool6"` // RFC 6052 prefix
	EAM           []XlatEAM `json:"eam"`
	RFC6791v4     string    `json:"rfc6791v4"` // RFC 6791 pools for untranslatable ICMP error sources
	RFC6791v6     string    `json:"rfc6791v6"`
	IPv4Address   string    `json:"ipv4_address"` // the translator's own addresses
	IPv6Address   string    `json:"ipv6_address"`
	IPv4MTU       int       `json:"ipv4_mtu"`
	IPv6MTU       int       `json:"ipv6_mtu"`
	LowestIPv6MTU int       `json:"lowest_ipv6_mtu"`
}

// Xlat is GET /v1/xlat: the config now and the packets per translation
// outcome (every outcome, 0 included; dp/xlat.Outcome names them) since
// the gateway started.
type Xlat struct {
	Config   XlatConfig        `json:"config"`
	Outcomes map[string]uint64 `json:"outcomes"`
}

// XlatChange is the body of PUT /v1/xlat: the fields to change, at least
// one; absent ones keep their value. A prefix of "" removes it (pool6,
// rfc6791v4, rfc6791v6); eam replaces the whole table ([] empties it).
// The change applies to every packet translated after the reply, or not
// at all: an invalid config is answered 400 naming the key.
type XlatChange struct {
	Pool6         *string    `json:"pool6,omitempty"`
	EAM           *[]XlatEAM `json:"eam,omitempty"`
	RFC6791v4     *string    `json:"rfc6791v4,omitempty"`
	RFC6791v6     *string    `json:"rfc6791v6,omitempty"`
	IPv4MTU       *int       `json:"ipv4_mtu,omitempty"`
	IPv6MTU       *int       `json:"ipv6_mtu,omitempty"`
	LowestIPv6MTU *int       `json:"lowest_ipv6_mtu,omitempty"`
}

func (c *Client) Xlat(ctx context.Context) (Xlat, error) {
	var x Xlat
	return x, c.Do(ctx, http.MethodGet, "/v1/xlat", nil, &x)
}

// SetXlat changes the fields ch names and returns the config then.
func (c *Client) SetXlat(ctx context.Context, ch XlatChange) (XlatConfig, error) {
	var x XlatConfig
	return x, c.Do(ctx, http.MethodPut, "/v1/xlat", ch, &x)
}
