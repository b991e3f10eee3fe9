package steer

// Regenerate steer_bpfel.go and steer_bpfel.o from steer.c (needs clang,
// llvm and libbpf-dev; the outputs are committed so `go build` needs none).
//go:generate sh -c "go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -type reason -type t4_key -type t4_val steer bpf/steer.c -- -O2 -g -Wall -Werror -I/usr/include/$(uname -m)-linux-gnu"
