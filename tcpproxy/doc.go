// Package tcpproxy terminates TCP on gVisor netstack.
package tcpproxy
