// Traffic generator program for BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES.
// The kernel recycles frames without restoring their bytes, and a frame
// redirected through veth comes back to the pool with whatever the devices
// under test wrote into it (a steered destination MAC, a decremented TTL, a
// NAT rewrite). So every run first restores the whole header (Ethernet, IP,
// L4) from the template in gen_config, then writes the fields that vary:
// source address (low 32 bits), source port, the sequence stamp and both
// checksums. Checksums start from sums the loader computed over the template
// with those fields zeroed.
//
// Each transmit thread passes its own template whose stamp already holds
// its stream id; the program only reads it, and keeps that stream's state
// (sequence, pacing, limit) in slot stream % 128 of gen_state. Frames too
// small for a stamp use slot 128 + CPU. A slot with an interval paces
// itself: runs before the next due time return XDP_DROP (the frame goes
// back to the pool unsent), so one long BPF_PROG_RUN call transmits at the
// configured rate without bursts.
#include "common.h"

#define GEN_IPV6 1
#define GEN_TCP 2
#define GEN_STAMP 4

// Longest header restored per frame: Ethernet + IPv6 + TCP = 74 bytes.
#define GEN_HDR_MAX 80

struct gen_cfg {
	__u32 flags;
	__u32 nflows;  // naddr * nport, >= 1
	__u32 nport;   // >= 1
	__u32 port_lo; // first source port, host order
	__u32 addr_lo; // first source address (low 32 bits), host order
	__u32 pad;
	__u32 ip_sum; // folded sum of the IPv4 header, varying fields zero
	__u32 l4_sum; // folded sum of pseudo-header + segment, varying fields zero
	__u8 hdr[GEN_HDR_MAX]; // the template's bytes up to the L4 payload
};

#define GEN_SLOTS 256
#define GEN_CPU_SLOT 128

struct gen_slot {
	__u64 seq;      // frames transmitted = next sequence number
	__u64 next_ns;  // pacing: earliest time of the next frame
	__u64 interval; // pacing: ns between frames; 0 = full speed
	__u64 limit;    // frames to transmit at most; 0 = no limit
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_cfg);
} gen_config SEC(".maps");

// One slot per transmit thread (written by one thread at a time).
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GEN_SLOTS);
	__type(key, __u32);
	__type(value, struct gen_slot);
} gen_state SEC(".maps");

static __always_inline __u32 sum16(const __u16 *p, int n)
{
	__u32 s = 0;
#pragma unroll
	for (int i = 0; i < n; i++)
		s += p[i];
	return s;
}

// Rewrites one frame laid out as Ethernet | IP (l3len) | L4 header (l4hlen) |
// payload. saddr_off is the offset of the low 32 bits of the source address.
static __always_inline int rewrite(struct xdp_md *ctx, struct gen_cfg *cfg,
				   const int saddr_off, const int ipcsum_off, const int l4_off,
				   const int l4csum_off, const int pay_off, const int is_udp)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + pay_off > end)
		return XDP_ABORTED;

	struct stamp *st = data + pay_off;
	int stamped = (cfg->flags & GEN_STAMP) && (void *)(st + 1) <= end;
	__u32 slot = GEN_CPU_SLOT + (bpf_get_smp_processor_id() % GEN_CPU_SLOT);
	if (stamped)
		slot = st->stream % GEN_CPU_SLOT;
	struct gen_slot *sl = bpf_map_lookup_elem(&gen_state, &slot);
	if (!sl)
		return XDP_ABORTED;
	if (sl->limit && sl->seq >= sl->limit)
		return XDP_DROP;
	if (sl->interval) {
		__u64 now = bpf_ktime_get_ns();
		if (now < sl->next_ns)
			return XDP_DROP;
		// Forgive debts over 1 ms instead of bursting to repay them.
		if (now - sl->next_ns > 1000000)
			sl->next_ns = now;
		sl->next_ns += sl->interval;
	}
	__u64 seq = sl->seq;
	sl->seq = seq + 1;

	// pay_off is a constant of each inlined call: the copy unrolls.
	__builtin_memcpy(data, cfg->hdr, pay_off);

	__u32 idx = (__u32)seq % cfg->nflows;
	__u32 addr = cfg->addr_lo + idx / cfg->nport;
	__u32 port = cfg->port_lo + idx % cfg->nport;

	__u32 *sa = data + saddr_off;
	*sa = __builtin_bswap32(addr);
	__u16 *sp = data + l4_off;
	*sp = __builtin_bswap16((__u16)port);

	__u32 var = sum16((__u16 *)sa, 2) + *sp;
	if (stamped) {
		// magic is part of the template sum; the stream (per thread
		// template, never written here) and seq are not.
		st->seq = seq;
		var += sum16((__u16 *)&st->stream, 6);
	}

	if (ipcsum_off) {
		__u16 *ic = data + ipcsum_off;
		*ic = (__u16)~fold(cfg->ip_sum + sum16((__u16 *)sa, 2));
	}
	__u16 *lc = data + l4csum_off;
	__u16 c = (__u16)~fold(cfg->l4_sum + var);
	if (is_udp && c == 0)
		c = 0xffff;
	*lc = c;
	return XDP_TX;
}

SEC("xdp")
int pktgen_live(struct xdp_md *ctx)
{
	__u32 k = 0;
	struct gen_cfg *cfg = bpf_map_lookup_elem(&gen_config, &k);
	if (!cfg || cfg->nflows == 0 || cfg->nport == 0)
		return XDP_ABORTED;

	switch (cfg->flags & (GEN_IPV6 | GEN_TCP)) {
	case 0: // IPv4 UDP
		return rewrite(ctx, cfg, 26, 24, 34, 40, 42, 1);
	case GEN_TCP: // IPv4 TCP, no options
		return rewrite(ctx, cfg, 26, 24, 34, 50, 54, 0);
	case GEN_IPV6: // IPv6 UDP
		return rewrite(ctx, cfg, 34, 0, 54, 60, 62, 1);
	default: // IPv6 TCP
		return rewrite(ctx, cfg, 34, 0, 54, 70, 74, 0);
	}
}

char __license[] SEC("license") = "Dual MIT/GPL";
