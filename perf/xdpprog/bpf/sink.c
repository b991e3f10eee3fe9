// Counting sink: counts every frame and its bytes per CPU, and for frames
// carrying the generator's stamp tracks, per stream, the first and highest
// sequence seen, how many arrived and how many arrived late (below the
// highest already seen: reordered or duplicated). Loss per stream is
// (max - first + 1) - received. Streams are tracked per CPU: exact while a
// stream is received on one CPU (one RX queue, as on veth).
#include "common.h"

#define MAX_STREAMS 256

struct sink_totals {
	__u64 packets;
	__u64 bytes;
	__u64 stamped;
};

struct stream_stat {
	__u64 first; // first sequence + 1; 0 = nothing yet
	__u64 max;
	__u64 received;
	__u64 late;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sink_totals);
} sink_totals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_STREAMS);
	__type(key, __u32);
	__type(value, struct stream_stat);
} sink_streams SEC(".maps");

// XDP action after counting: XDP_DROP by default, XDP_PASS to let the stack see it.
volatile const __u32 sink_action = XDP_DROP;

SEC("xdp")
int pktgen_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 k = 0;
	struct sink_totals *t = bpf_map_lookup_elem(&sink_totals, &k);
	if (!t)
		return sink_action;
	t->packets++;
	t->bytes += end - data;

	if (data + ETH_HLEN > end)
		return sink_action;
	__u16 proto = *(__u16 *)(data + 12);
	__u8 l4;
	__u32 off;
	if (proto == __builtin_bswap16(ETH_P_IP)) {
		__u8 *ip = data + ETH_HLEN;
		if ((void *)(ip + 20) > end)
			return sink_action;
		off = ETH_HLEN + (ip[0] & 0xf) * 4;
		l4 = ip[9];
	} else if (proto == __builtin_bswap16(ETH_P_IPV6)) {
		__u8 *ip = data + ETH_HLEN;
		if ((void *)(ip + 40) > end)
			return sink_action;
		off = ETH_HLEN + 40;
		l4 = ip[6];
	} else {
		return sink_action;
	}
	if (l4 == IPPROTO_UDP) {
		off += 8;
	} else if (l4 == IPPROTO_TCP) {
		__u8 *th = data + off;
		if ((void *)(th + 20) > end)
			return sink_action;
		off += (th[12] >> 4) * 4;
	} else {
		return sink_action;
	}
	if (off > 256)
		return sink_action;
	struct stamp *st = data + off;
	if ((void *)(st + 1) > end || st->magic != STAMP_MAGIC)
		return sink_action;
	t->stamped++;

	__u32 sid = st->stream % MAX_STREAMS;
	__u64 seq = st->seq;
	struct stream_stat *s = bpf_map_lookup_elem(&sink_streams, &sid);
	if (!s)
		return sink_action;
	s->received++;
	if (s->first == 0) {
		s->first = seq + 1;
		s->max = seq;
	} else if (seq > s->max) {
		s->max = seq;
	} else {
		s->late++;
	}
	return sink_action;
}

char __license[] SEC("license") = "Dual MIT/GPL";
