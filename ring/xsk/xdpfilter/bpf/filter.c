// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// samepath XDP filter: redirects to AF_XDP sockets only the frames the
// dataplane owns and passes everything else (ARP, IPv6 neighbour discovery,
// the host's own traffic) to the kernel. The match lives in maps that the
// Go loader (filter.go) fills from a Match; see that file for semantics.
//
// Self-contained on purpose: it includes no kernel uapi header, so it
// compiles with plain clang -target bpf on any host, without the
// architecture-specific asm/ include directory.

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u64 __be64;
typedef __u32 __wsum;

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// From include/uapi/linux/bpf.h.
struct xdp_md {
	__u32 data;
	__u32 data_end;
	__u32 data_meta;
	__u32 ingress_ifindex;
	__u32 rx_queue_index;
	__u32 egress_ifindex;
};
enum { XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT };
enum {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LPM_TRIE = 11,
	BPF_MAP_TYPE_XSKMAP = 17,
};
#define BPF_F_NO_PREALLOC 1

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define IPPROTO_HOPOPTS 0
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_ICMPV6 58
#define IPPROTO_DSTOPTS 60

// Keep in step with filter.go.
#define MAX_IFACES 16
#define MAX_QUEUES 64
#define F_ANY_MAC 1
#define F_ANY_SRC 2
#define F_ANY_DST 4

enum counter {
	C_REDIRECT,   // handed to an AF_XDP socket
	C_NO_SOCKET,  // matched, but no socket on this queue: passed
	C_NOT_OURS,   // MAC, EtherType or address did not match: passed
	C_EXCLUDED,   // destination is one of the host's addresses: passed
	C_ND,         // ICMPv6 router/neighbour discovery: passed
	C_MALFORMED,  // too short or bad header to be judged: passed
	C_COUNT,
};

struct config {
	__u32 flags;
};

struct mac_key {
	__u8 addr[6];
	__u16 pad;
};

struct lpm4 {
	__u32 prefixlen;
	__u8 addr[4];
};

struct lpm6 {
	__u32 prefixlen;
	__u8 addr[16];
};

struct addr6 {
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_IFACES * MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

// ifindex -> slot; the XSKMAP key is slot * MAX_QUEUES + queue.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_IFACES);
	__type(key, __u32);
	__type(value, __u32);
} if_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} config_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct mac_key);
	__type(value, __u8);
} dst_macs SEC(".maps");

// EtherType in host byte order -> 1.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32);
	__type(key, __u16);
	__type(value, __u8);
} ether_types SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm4);
	__type(value, __u8);
} src4 SEC(".maps"), dst4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm6);
	__type(value, __u8);
} src6 SEC(".maps"), dst6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} excl4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct addr6);
	__type(value, __u8);
} excl6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, C_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline int count(__u32 c, int verdict)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &c);
	if (v)
		*v += 1;
	return verdict;
}

// Minimal header layouts (RFC 791, RFC 8200); only the fields read.
struct ethhdr {
	__u8 dst[6];
	__u8 src[6];
	__be16 proto;
};
struct vlanhdr {
	__be16 tci;
	__be16 proto;
};
struct iphdr {
	__u8 vihl;
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag;
	__u8 ttl;
	__u8 protocol;
	__u16 check;
	__be32 saddr;
	__be32 daddr;
};
struct ipv6hdr {
	__be32 vtcfl;
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__u8 saddr[16];
	__u8 daddr[16];
};
struct exthdr {
	__u8 nexthdr;
	__u8 len;
};
struct fraghdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 id;
};

// is_nd reports whether an IPv6 packet is ICMPv6 router or neighbour
// discovery (types 133-137), walking up to four extension headers. It
// returns -1 when the headers run past the frame.
static __always_inline int is_nd(struct ipv6hdr *ip6, void *data_end)
{
	__u8 next = ip6->nexthdr;
	void *p = ip6 + 1;
#pragma unroll
	for (int i = 0; i < 4; i++) {
		if (next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS) {
			struct exthdr *e = p;
			if ((void *)(e + 1) > data_end)
				return -1;
			next = e->nexthdr;
			p += (e->len + 1) * 8;
			continue;
		}
		if (next == IPPROTO_FRAGMENT) {
			struct fraghdr *f = p;
			if ((void *)(f + 1) > data_end)
				return -1;
			// A later fragment carries no ICMPv6 header; ND is
			// never fragmented (RFC 6980).
			if (f->frag_off & bpf_htons(0xfff8))
				return 0;
			next = f->nexthdr;
			p += sizeof(*f);
			continue;
		}
		break;
	}
	if (next != IPPROTO_ICMPV6)
		return 0;
	__u8 *type = p;
	if ((void *)(type + 1) > data_end)
		return -1;
	return *type >= 133 && *type <= 137;
}

// to_socket hands the frame to the AF_XDP socket of its queue.
static __always_inline int to_socket(struct xdp_md *ctx)
{
	__u32 ifindex = ctx->ingress_ifindex;
	__u32 *slot = bpf_map_lookup_elem(&if_slots, &ifindex);
	__u32 q = ctx->rx_queue_index;
	if (!slot || q >= MAX_QUEUES)
		return count(C_NO_SOCKET, XDP_PASS);
	__u32 key = *slot * MAX_QUEUES + q;
	int ret = bpf_redirect_map(&xsks_map, key, XDP_PASS);
	return count(ret == XDP_REDIRECT ? C_REDIRECT : C_NO_SOCKET, ret);
}

// bad_ip decides the fate of a frame to one of our MACs, with one of our
// EtherTypes, whose IP header is malformed. Without address prefixes the
// frame is the dataplane's: it goes to the socket, where the pipeline
// counts it as a malformed drop (as the in-kernel steering offload does).
// With prefixes it cannot be judged, so the kernel gets it.
static __always_inline int bad_ip(struct xdp_md *ctx, __u32 flags)
{
	if ((flags & F_ANY_SRC) && (flags & F_ANY_DST))
		return to_socket(ctx);
	return count(C_MALFORMED, XDP_PASS);
}

SEC("xdp")
int samepath_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;

	struct config *cfg = bpf_map_lookup_elem(&config_map, &zero);
	if (!cfg)
		return XDP_PASS;
	__u32 flags = cfg->flags;

	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return count(C_MALFORMED, XDP_PASS);
	if (!(flags & F_ANY_MAC)) {
		struct mac_key k = {};
		__builtin_memcpy(k.addr, eth->dst, 6);
		if (!bpf_map_lookup_elem(&dst_macs, &k))
			return count(C_NOT_OURS, XDP_PASS);
	}
	__u16 proto = bpf_ntohs(eth->proto);
	void *l3 = eth + 1;
	if (proto == ETH_P_8021Q) {
		struct vlanhdr *v = l3;
		if ((void *)(v + 1) > data_end)
			return count(C_MALFORMED, XDP_PASS);
		proto = bpf_ntohs(v->proto);
		l3 = v + 1;
	}
	if (!bpf_map_lookup_elem(&ether_types, &proto))
		return count(C_NOT_OURS, XDP_PASS);

	if (proto == ETH_P_IP) {
		struct iphdr *ip = l3;
		if ((void *)(ip + 1) > data_end || (ip->vihl >> 4) != 4 || (ip->vihl & 0xf) < 5 ||
		    (void *)ip + (ip->vihl & 0xf) * 4 > data_end)
			return bad_ip(ctx, flags);
		__u32 daddr = ip->daddr;
		if (bpf_map_lookup_elem(&excl4, &daddr))
			return count(C_EXCLUDED, XDP_PASS);
		if (!(flags & F_ANY_SRC)) {
			struct lpm4 k = {.prefixlen = 32};
			__builtin_memcpy(k.addr, &ip->saddr, 4);
			if (!bpf_map_lookup_elem(&src4, &k))
				return count(C_NOT_OURS, XDP_PASS);
		}
		if (!(flags & F_ANY_DST)) {
			struct lpm4 k = {.prefixlen = 32};
			__builtin_memcpy(k.addr, &daddr, 4);
			if (!bpf_map_lookup_elem(&dst4, &k))
				return count(C_NOT_OURS, XDP_PASS);
		}
	} else if (proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = l3;
		if ((void *)(ip6 + 1) > data_end || (bpf_ntohl(ip6->vtcfl) >> 28) != 6)
			return bad_ip(ctx, flags);
		int nd = is_nd(ip6, data_end);
		if (nd < 0)
			return count(C_MALFORMED, XDP_PASS);
		if (nd)
			return count(C_ND, XDP_PASS);
		struct addr6 d;
		__builtin_memcpy(d.addr, ip6->daddr, 16);
		if (bpf_map_lookup_elem(&excl6, &d))
			return count(C_EXCLUDED, XDP_PASS);
		if (!(flags & F_ANY_SRC)) {
			struct lpm6 k = {.prefixlen = 128};
			__builtin_memcpy(k.addr, ip6->saddr, 16);
			if (!bpf_map_lookup_elem(&src6, &k))
				return count(C_NOT_OURS, XDP_PASS);
		}
		if (!(flags & F_ANY_DST)) {
			struct lpm6 k = {.prefixlen = 128};
			__builtin_memcpy(k.addr, d.addr, 16);
			if (!bpf_map_lookup_elem(&dst6, &k))
				return count(C_NOT_OURS, XDP_PASS);
		}
	} else if (!(flags & F_ANY_SRC) || !(flags & F_ANY_DST)) {
		// Address prefixes are set but the frame has no IP addresses.
		return count(C_NOT_OURS, XDP_PASS);
	}
	return to_socket(ctx);
}

char __license[] SEC("license") = "Dual BSD/GPL";
