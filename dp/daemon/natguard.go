package daemon

import (
	"bytes"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// natGuardTable is the nftables table guardNATAddrs writes (one per
// network namespace: one gateway).
const natGuardTable = "samepath_natguard"

// guardNATAddrs drops, in an nftables input hook, every packet to the
// key-port addresses (own and peers') that the kernel would deliver
// locally. While samepathd runs its XDP program takes them all first;
// the rule matters after a crash: the XDP program goes with the process,
// the addresses stay on the interface, and the kernel would answer the
// servers' segments of live flows with RSTs (no socket has those ports),
// killing the flows the substitute is about to take over (issue 17).
// The table outlives the process; a clean stop removes it (the
// addresses go too). ARP is untouched: the addresses still resolve
// until the substitute's gratuitous ARP moves them.
//
// It runs nft(8) (this kernel offers no tc classifier to do it with
// netlink alone); without nft it logs a warning and samepathd runs
// unguarded.
func (d *Daemon) guardNATAddrs(addrs []netip.Addr) error {
	nft, err := exec.LookPath("nft")
	if err != nil {
		d.log.Warn("nat guard off: no nft; a crash of this gateway resets its live flows (the kernel answers them)", "err", err)
		return nil
	}
	var v4, v6 []string
	for _, a := range addrs {
		if a = a.Unmap(); a.Is4() {
			v4 = append(v4, a.String())
		} else {
			v6 = append(v6, a.String())
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s\ndelete table inet %s\ntable inet %s {\n  chain in {\n    type filter hook input priority -300; policy accept;\n", natGuardTable, natGuardTable, natGuardTable)
	if len(v4) > 0 {
		fmt.Fprintf(&b, "    ip daddr { %s } drop\n", strings.Join(v4, ", "))
	}
	if len(v6) > 0 {
		fmt.Fprintf(&b, "    ip6 daddr { %s } drop\n", strings.Join(v6, ", "))
	}
	b.WriteString("  }\n}\n")
	if err := runNft(nft, b.String()); err != nil {
		return fmt.Errorf("nat guard: %w", err)
	}
	d.closers = append(d.closers, func() error { return runNft(nft, "delete table inet "+natGuardTable+"\n") })
	return nil
}

func runNft(nft, script string) error {
	cmd := exec.Command(nft, "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft: %w: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}
