package xdpprog

// Regenerate with `make generate` (or `go generate ./perf/xdpprog`); needs
// clang and libbpf-dev. The generated .o and .go files are committed so a
// checkout builds without clang.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -go-package xdpprog gen bpf/gen.c -- -O2 -Wall -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -go-package xdpprog sink bpf/sink.c -- -O2 -Wall -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -go-package xdpprog fwd bpf/fwd.c -- -O2 -Wall -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu
