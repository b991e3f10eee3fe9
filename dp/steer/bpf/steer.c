// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// In-kernel steering offload of the samepath load-balancer role (R-LB-1..5).
// Two entry points share every map: steer_up is attached to the ingress-side
// interface (toward the NAS/router), steer_down to the gateway-side
// interface. See doc.go for the semantics; dp/lb.go is the reference.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_GW 8      // nat.MaxGateways
#define NUM_DROPS 32  // capacity of the drop counters; dp.NumReasons must fit

// Drop reasons. The numbers are dp.Reason's; a Go test checks they agree.
enum reason {
	REASON_NONE = 0,
	REASON_MALFORMED = 1,
	REASON_NO_ROUTE = 3,
	REASON_ALL_DOWN = 4,
	REASON_TX_ERROR = 6,
	REASON_NO_NEXT_HOP = 9,
};

// Address families in the T4 key. The family byte keeps IPv4 and IPv6 rows
// apart in one trie, as nat.T4 keeps them in two lists.
// The values are familyV4 and familyV6 in maps.go.
#define FAMILY_V4 4
#define FAMILY_V6 6

// LPM trie key: prefixlen counts the family byte (8 bits) plus the
// range's prefix bits. IPv4 addresses fill addr[0..3].
struct t4_key {
	__u32 prefixlen;
	__u8 family;
	__u8 addr[16];
	__u8 pad[3];
};

// One T4 row: n gateways, primary first; bit i of up says gateway i is up.
struct t4_val {
	__u8 n;
	__u8 up;
	__u8 pad[2];
	__u8 mac[MAX_GW][6];
};

// clang leaves types reached only through the inner map definition as
// forward declarations in BTF and drops enums used only in code; this
// unused global anchors them for bpf2go's generated Go types.
struct btf_anchor {
	struct t4_key key;
	struct t4_val val;
	enum reason reason;
};
const struct btf_anchor *btf_anchor __attribute__((unused));

struct mac_val {
	__u8 mac[6];
	__u8 pad[2];
};

struct counters {
	__u64 rx_packets; // frames the offload handled (not passed)
	__u64 rx_bytes;
	__u64 tx_packets; // frames transmitted (XDP_TX / XDP_REDIRECT)
	__u64 tx_bytes;
	__u64 passed; // frames left to the kernel
	__u64 drops[NUM_DROPS];
};

// The current T4. Go builds a whole new trie per update and swaps it into
// slot 0, so a packet sees the old table or the new one, never a mix.
struct t4_trie {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1); // each inner trie is sized when Go makes it
	__type(key, struct t4_key);
	__type(value, struct t4_val);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct t4_trie);
} t4 SEC(".maps");

// Egress interfaces: slot 0 ingress side, slot 1 gateway side.
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} tx_ports SEC(".maps");

// Ingress-side next hop MAC, key 0. A hash map without preallocation so an
// update replaces the element under RCU and readers never see a torn MAC.
// Absent or all-zero: unknown.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mac_val);
} next_hop SEC(".maps");

// The host's own addresses: frames to them go to the kernel. Sized at load.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32); // network byte order
	__type(value, __u8);
} exclude4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u8[16]);
	__type(value, __u8);
} exclude6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counters);
} stats SEC(".maps");

// Set by Go at load time.
volatile const __u8 ingress_mac[6];
volatile const __u8 gateway_mac[6];
volatile const __u8 one_armed; // ingress and gateway side are one interface

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define IPPROTO_ICMPV6 58

static __always_inline int own_mac(const __u8 *d, int up)
{
	if (up)
		return d[0] == ingress_mac[0] && d[1] == ingress_mac[1] &&
		       d[2] == ingress_mac[2] && d[3] == ingress_mac[3] &&
		       d[4] == ingress_mac[4] && d[5] == ingress_mac[5];
	return d[0] == gateway_mac[0] && d[1] == gateway_mac[1] &&
	       d[2] == gateway_mac[2] && d[3] == gateway_mac[3] &&
	       d[4] == gateway_mac[4] && d[5] == gateway_mac[5];
}

// Copies a load-time constant MAC byte by byte: casting volatile away (as
// memcpy would) lets the compiler fold the bytes to their zero initialiser.
static __always_inline void put_mac(__u8 *d, const volatile __u8 *m)
{
	d[0] = m[0];
	d[1] = m[1];
	d[2] = m[2];
	d[3] = m[3];
	d[4] = m[4];
	d[5] = m[5];
}

static __always_inline int drop(struct counters *c, enum reason r)
{
	c->drops[r]++;
	return XDP_DROP;
}

static __always_inline int steer(struct xdp_md *ctx, const int up)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct counters *c = bpf_map_lookup_elem(&stats, &zero);
	if (!c)
		return XDP_PASS; // cannot happen: a one-slot array

	__u8 *eth = data;
	if (data + ETH_HLEN > end || !own_mac(eth, up))
		goto pass;

	__u32 off = ETH_HLEN;
	__u16 et = bpf_ntohs(*(__u16 *)(eth + 12));
	if (et == ETH_P_8021Q) {
		if (data + ETH_HLEN + 4 > end)
			goto pass; // cannot tell whether it is IP: not ours
		et = bpf_ntohs(*(__u16 *)(eth + 16));
		off = ETH_HLEN + 4;
	}
	if (et != ETH_P_IP && et != ETH_P_IPV6)
		goto pass;

	__u8 *ip = data + off;
	struct t4_key key = {};
	key.prefixlen = 8 * (sizeof(key) - sizeof(key.prefixlen));
	if (et == ETH_P_IP) {
		if ((void *)ip + 20 > end || (ip[0] >> 4) != 4)
			goto malformed;
		__u32 ihl = (ip[0] & 0x0f) * 4;
		if (ihl < 20 || (void *)ip + ihl > end)
			goto malformed;
		if (bpf_map_lookup_elem(&exclude4, ip + 16))
			goto pass;
		key.family = FAMILY_V4;
		__builtin_memcpy(key.addr, ip + 12, 4);
	} else {
		if ((void *)ip + 40 > end || (ip[0] >> 4) != 6)
			goto malformed;
		if (bpf_map_lookup_elem(&exclude6, ip + 24))
			goto pass;
		// ND (RS, RA, NS, NA, redirect) belongs to the kernel. Only an
		// ICMPv6 header right after the fixed header is recognised.
		if (ip[6] == IPPROTO_ICMPV6 && (void *)ip + 41 <= end &&
		    ip[40] >= 133 && ip[40] <= 137)
			goto pass;
		__u8 *src = ip + 8;
		// IPv4-mapped sources (::ffff:a.b.c.d) match IPv4 rows, as in
		// nat.T4.LookupV6.
		if (*(__u32 *)src == 0 && *(__u32 *)(src + 4) == 0 &&
		    *(__u32 *)(src + 8) == bpf_htonl(0x0000ffff)) {
			key.family = FAMILY_V4;
			__builtin_memcpy(key.addr, src + 12, 4);
		} else {
			key.family = FAMILY_V6;
			__builtin_memcpy(key.addr, src, 16);
		}
	}

	__u64 len = end - data;
	c->rx_packets++;
	c->rx_bytes += len;

	// Choose the new MACs, then the egress, then rewrite: a dropped frame
	// is never modified.
	const __u8 *dst;
	const volatile __u8 *src;
	__u32 port;
	if (up) {
		void *trie = bpf_map_lookup_elem(&t4, &zero);
		if (!trie)
			return drop(c, REASON_NO_ROUTE);
		struct t4_val *row = bpf_map_lookup_elem(trie, &key);
		if (!row)
			return drop(c, REASON_NO_ROUTE);
		int gw = -1;
#pragma clang loop unroll(full)
		for (int i = MAX_GW - 1; i >= 0; i--)
			if (i < row->n && (row->up >> i) & 1)
				gw = i;
		if (gw < 0)
			return drop(c, REASON_ALL_DOWN);
		dst = row->mac[gw];
		src = gateway_mac;
		port = 1;
	} else {
		struct mac_val *nh = bpf_map_lookup_elem(&next_hop, &zero);
		if (!nh || (nh->mac[0] | nh->mac[1] | nh->mac[2] | nh->mac[3] |
			    nh->mac[4] | nh->mac[5]) == 0)
			return drop(c, REASON_NO_NEXT_HOP);
		dst = nh->mac;
		src = ingress_mac;
		port = 0;
	}

	int act = XDP_TX;
	// bpf_redirect_map only records the target; the frame leaves after
	// the program returns. An empty slot (its interface was deleted)
	// gives XDP_DROP.
	if (!one_armed && (act = bpf_redirect_map(&tx_ports, port, XDP_DROP)) != XDP_REDIRECT)
		return drop(c, REASON_TX_ERROR);
	__builtin_memcpy(eth, dst, 6);
	put_mac(eth + 6, src);
	c->tx_packets++;
	c->tx_bytes += len;
	return act;

malformed:
	c->rx_packets++;
	c->rx_bytes += end - data;
	return drop(c, REASON_MALFORMED);
pass:
	c->passed++;
	return XDP_PASS;
}

SEC("xdp")
int steer_up(struct xdp_md *ctx)
{
	return steer(ctx, 1);
}

SEC("xdp")
int steer_down(struct xdp_md *ctx)
{
	return steer(ctx, 0);
}

char __license[] SEC("license") = "Dual MIT/GPL";
