// Kernel baselines for the lb-steer scenario: what a user would run instead
// of samepath on the device under test.
#include "common.h"

// Destination and source MAC written by fwd_redirect before it redirects the
// frame to the egress device in tx_port[0].
volatile const __u8 fwd_dst_mac[6] = {};
volatile const __u8 fwd_src_mac[6] = {};

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} tx_port SEC(".maps");

SEC("xdp")
int fwd_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

SEC("xdp")
int fwd_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

// Swap the Ethernet addresses and send the frame back out where it came in.
SEC("xdp")
int fwd_tx(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + ETH_HLEN > end)
		return XDP_DROP;
	__u16 *m = data;
	__u16 a = m[0], b = m[1], c = m[2];
	m[0] = m[3];
	m[1] = m[4];
	m[2] = m[5];
	m[3] = a;
	m[4] = b;
	m[5] = c;
	return XDP_TX;
}

// Rewrite the Ethernet addresses for the next hop and redirect the frame to
// the device in tx_port[0] (the L2 steering an LB does, without its table).
SEC("xdp")
int fwd_redirect(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + ETH_HLEN > end)
		return XDP_DROP;
	__u8 *m = data;
#pragma unroll
	for (int i = 0; i < 6; i++) {
		m[i] = fwd_dst_mac[i];
		m[6 + i] = fwd_src_mac[i];
	}
	return bpf_redirect_map(&tx_port, 0, XDP_DROP);
}

char __license[] SEC("license") = "Dual MIT/GPL";
