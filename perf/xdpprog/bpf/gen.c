// Traffic generator program for BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES.
// The kernel recycles frames without restoring their bytes, so every field
// that varies is rewritten on every run: source address (low 32 bits), source
// port, the sequence stamp and both checksums. Checksums start from sums the
// loader computed over the template with those fields zeroed.
#include "common.h"

#define GEN_IPV6 1
#define GEN_TCP 2
#define GEN_STAMP 4

struct gen_cfg {
	__u32 flags;
	__u32 nflows;      // naddr * nport, >= 1
	__u32 nport;       // >= 1
	__u32 port_lo;     // first source port, host order
	__u32 addr_lo;     // first source address (low 32 bits), host order
	__u32 stream_base; // stream id = stream_base + cpu
	__u32 ip_sum;      // folded sum of the IPv4 header, varying fields zero
	__u32 l4_sum;      // folded sum of pseudo-header + segment, varying fields zero
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_cfg);
} gen_config SEC(".maps");

// Frames generated on each CPU; doubles as the sequence counter.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} gen_seq SEC(".maps");

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
static __always_inline int rewrite(struct xdp_md *ctx, struct gen_cfg *cfg, __u64 seq,
				   const int saddr_off, const int ipcsum_off, const int l4_off,
				   const int l4csum_off, const int pay_off, const int is_udp)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + pay_off > end)
		return XDP_ABORTED;

	__u32 idx = (__u32)seq % cfg->nflows;
	__u32 addr = cfg->addr_lo + idx / cfg->nport;
	__u32 port = cfg->port_lo + idx % cfg->nport;

	__u32 *sa = data + saddr_off;
	*sa = __builtin_bswap32(addr);
	__u16 *sp = data + l4_off;
	*sp = __builtin_bswap16((__u16)port);

	__u32 var = sum16((__u16 *)sa, 2) + *sp;
	if ((cfg->flags & GEN_STAMP) && data + pay_off + STAMP_LEN <= end) {
		struct stamp *st = data + pay_off;
		st->magic = STAMP_MAGIC;
		st->stream = cfg->stream_base + bpf_get_smp_processor_id();
		st->seq = seq;
		// magic is part of the template sum; stream and seq vary.
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
	__u64 *seqp = bpf_map_lookup_elem(&gen_seq, &k);
	if (!cfg || !seqp || cfg->nflows == 0 || cfg->nport == 0)
		return XDP_ABORTED;
	__u64 seq = *seqp;
	*seqp = seq + 1;

	switch (cfg->flags & (GEN_IPV6 | GEN_TCP)) {
	case 0: // IPv4 UDP
		return rewrite(ctx, cfg, seq, 26, 24, 34, 40, 42, 1);
	case GEN_TCP: // IPv4 TCP, no options
		return rewrite(ctx, cfg, seq, 26, 24, 34, 50, 54, 0);
	case GEN_IPV6: // IPv6 UDP
		return rewrite(ctx, cfg, seq, 34, 0, 54, 60, 62, 1);
	default: // IPv6 TCP
		return rewrite(ctx, cfg, seq, 34, 0, 54, 70, 74, 0);
	}
}

char __license[] SEC("license") = "Dual MIT/GPL";
