package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// CaptureRequest asks a samepathd for a packet capture from its
// dataplane (POST /v1/capture). Every set filter part must match; the
// answer is a pcapng file, streamed as the capture runs
// (CaptureContentType), with the trailers CaptureFramesTrailer,
// CaptureLostTrailer, CaptureEndTrailer and, if writing failed midway,
// CaptureErrorTrailer.
type CaptureRequest struct {
	// Direction is up (frames the dataplane receives from the mobiles'
	// side: the gateway's LAN, the LB's ingress), down (from the
	// servers' side: the gateway's servers, the LB's gateway side) or
	// empty for both.
	Direction string `json:"direction,omitempty"`
	// Iface takes only frames received on this interface.
	Iface string `json:"iface,omitempty"`
	// BPF is a classic BPF program, as `tcpdump -ddd -y EN10MB EXPR`
	// writes it, run on each frame as received; Expr is EXPR, for the
	// file's comment (samepathctl capture compiles it).
	BPF  string `json:"bpf,omitempty"`
	Expr string `json:"expr,omitempty"`
	// Tuple is "PROTO SRC[:PORT] DST[:PORT]" (tcp, udp, icmp, icmp6, a
	// number or *; an address, a prefix or *; a port or *), matched in
	// either orientation.
	Tuple string `json:"tuple,omitempty"`
	// Drops takes only frames the dataplane dropped or refused; Reason
	// (a drop reason of the counters: no_flow, denied, ...) only those.
	Drops  bool   `json:"drops,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Count is the most frames taken (default 100), DurationMS the
	// longest the capture runs in milliseconds (default 10 000), SnapLen
	// the most bytes kept of each frame (default and at most the UMEM
	// frame size).
	Count      int   `json:"count,omitempty"`
	DurationMS int64 `json:"duration_ms,omitempty"`
	SnapLen    int   `json:"snaplen,omitempty"`
}

// The capture answer's content type and trailers.
const (
	CaptureContentType   = "application/x-pcapng"
	CaptureFramesTrailer = "Samepath-Capture-Frames" // frames written
	CaptureLostTrailer   = "Samepath-Capture-Lost"   // matched frames the capture had no room for
	CaptureEndTrailer    = "Samepath-Capture-End"    // count, duration or canceled
	CaptureErrorTrailer  = "Samepath-Capture-Error"  // why writing stopped early
)

// CaptureResult is what a finished capture reports in its trailers.
type CaptureResult struct {
	Frames int    `json:"frames"`
	Lost   uint64 `json:"lost"`
	End    string `json:"end"`
}

// Capture runs a capture and writes the pcapng file to w as it arrives.
// It waits as long as ctx allows (not the client's timeout): the
// capture runs up to its duration.
func (c *Client) Capture(ctx context.Context, req CaptureRequest, w io.Writer) (CaptureResult, error) {
	const path = "/v1/capture"
	b, err := json.Marshal(req)
	if err != nil {
		return CaptureResult{}, fmt.Errorf("encode POST %s: %w", path, err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+path, bytes.NewReader(b))
	if err != nil {
		return CaptureResult{}, err
	}
	hr.Header.Set("Content-Type", "application/json")
	if c.Token != "" {
		hr.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := http.Client{}
	if c.HTTP != nil {
		hc = *c.HTTP
	}
	hc.Timeout = 0 // ctx bounds the capture
	resp, err := hc.Do(hr)
	if err != nil {
		return CaptureResult{}, fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e Error
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return CaptureResult{}, fmt.Errorf("POST %s: %s: %s", path, resp.Status, e.Error)
		}
		return CaptureResult{}, fmt.Errorf("POST %s: %s", path, resp.Status)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return CaptureResult{}, fmt.Errorf("POST %s: read capture: %w", path, err)
	}
	if e := resp.Trailer.Get(CaptureErrorTrailer); e != "" {
		return CaptureResult{}, fmt.Errorf("POST %s: capture failed: %s", path, e)
	}
	var res CaptureResult
	res.End = resp.Trailer.Get(CaptureEndTrailer)
	if res.Frames, err = strconv.Atoi(resp.Trailer.Get(CaptureFramesTrailer)); err != nil {
		return res, fmt.Errorf("POST %s: the capture ended without its %s trailer (cut short?)", path, CaptureFramesTrailer)
	}
	res.Lost, _ = strconv.ParseUint(resp.Trailer.Get(CaptureLostTrailer), 10, 64)
	return res, nil
}
