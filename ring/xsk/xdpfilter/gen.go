package xdpfilter

// The eBPF object and its Go bindings are generated from bpf/filter.c and
// committed, so building needs no clang. Regenerate after editing bpf/filter.c
// (needs clang and libbpf-dev for <bpf/bpf_helpers.h>):
//
//	go generate ./ring/xsk/xdpfilter
//
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel,bpfeb -type config filter bpf/filter.c -- -O2 -g -Wall -Werror
