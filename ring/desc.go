package ring

// Desc describes one frame: its byte offset in a Umem and its length. The
// layout matches the kernel's struct xdp_desc, so AF_XDP rings can hold Descs
// directly.
type Desc struct {
	Addr    uint64
	Len     uint32
	Options uint32
}
