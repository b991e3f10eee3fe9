// Shared definitions for samepath's perf XDP programs. Little-endian only
// (bpf2go builds bpfel); packet fields are read and written as they lie in
// memory, and checksums are one's-complement sums of those native 16-bit
// loads, which is byte-order independent (RFC 1071 section 2(B)).
#pragma once
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

// Sequence stamp written at the start of the L4 payload by the generator.
#define STAMP_MAGIC 0x4e475053 // "SPGN" as it lies in memory, little-endian
#define STAMP_LEN 16

struct stamp {
	__u32 magic;
	__u32 stream;
	__u64 seq;
};

static __always_inline __u32 fold(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return s;
}
