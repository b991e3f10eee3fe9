#!/bin/bash
# capture.sh regenerates the FuzzParse seed corpus from real traffic: two
# network namespaces joined by a veth pair (this kernel has no 8021q module,
# so tagged frames come from the builder seeds in fuzz_test.go),
# tcpdump on one end, and ping, ping -6 (also with fragments), TCP to an
# open and a closed port, UDP to a closed port (ICMP errors), ARP and MLD
# (IPv6 hop-by-hop). Needs root, iproute2, tcpdump, ping, bash; python3 for
# the TCP listener (skipped without). Run from the repository root:
#   sudo dp/header/testdata/capture.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$here/fuzz/FuzzParse
tmp=$(mktemp -d)
a=cap$$a; b=cap$$b
cleanup() {
	[ -n "${tdpid:-}" ] && kill "$tdpid" 2>/dev/null || true
	[ -n "${srvpid:-}" ] && kill "$srvpid" 2>/dev/null || true
	ip netns del "$a" 2>/dev/null || true
	ip netns del "$b" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$a"; ip netns add "$b"
ip -n "$a" link add va type veth peer name vb netns "$b"
for ns in "$a" "$b"; do ip -n "$ns" link set lo up; done
ip -n "$a" addr add 10.99.0.1/24 dev va
ip -n "$b" addr add 10.99.0.2/24 dev vb
ip -n "$a" addr add fd00:99::1/64 dev va nodad
ip -n "$a" link set va up; ip -n "$b" link set vb up

ip netns exec "$a" tcpdump -U -s 0 -i va -w "$tmp/all.pcap" 2>/dev/null &
tdpid=$!
sleep 1
# MLD reports (hop-by-hop router alert) when vb joins its groups.
ip -n "$b" addr add fd00:99::2/64 dev vb nodad
sleep 1
ip netns exec "$a" ping -c 1 -W 1 10.99.0.2 >/dev/null
ip netns exec "$a" ping -6 -c 1 -W 1 fd00:99::2 >/dev/null
ip netns exec "$a" ping -c 1 -W 1 -s 3000 10.99.0.2 >/dev/null
ip netns exec "$a" ping -6 -c 1 -W 1 -s 3000 fd00:99::2 >/dev/null
ip netns exec "$a" bash -c 'echo x >/dev/udp/10.99.0.2/9; echo x >/dev/udp/fd00:99::2/9' || true
ip netns exec "$a" bash -c 'exec 3<>/dev/tcp/10.99.0.2/9' 2>/dev/null || true
if command -v python3 >/dev/null; then
	ip netns exec "$b" python3 -c '
import socket,sys
s=socket.socket(socket.AF_INET6); s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::",8080)); s.listen(4)
for _ in range(2):
    c,_=s.accept(); c.recv(100); c.sendall(b"HTTP/1.0 200 OK\r\n\r\nok"); c.close()
' &
	srvpid=$!
	for _ in $(seq 50); do
		ip netns exec "$b" ss -ltn | grep -q ':8080 ' && break
		sleep 0.1
	done
	ip netns exec "$a" bash -c 'exec 3<>/dev/tcp/10.99.0.2/8080; printf "GET / HTTP/1.0\r\n\r\n" >&3; cat <&3 >/dev/null' || true
	ip netns exec "$a" bash -c 'exec 3<>/dev/tcp/fd00:99::2/8080; printf "GET / HTTP/1.0\r\n\r\n" >&3; cat <&3 >/dev/null' || true
	wait "$srvpid" || true
	srvpid=
fi
sleep 1
kill "$tdpid"; wait "$tdpid" 2>/dev/null || true; tdpid=
cd "$here/../../.."
go run ./dp/header/testdata/pcap2corpus -prefix capture -max 200 -out "$out" "$tmp/all.pcap"
