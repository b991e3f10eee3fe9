package pktgen

import (
	"errors"

	"samepath/perf/xdpprog"
)

// afxdpEngine builds AF_XDP transmit threads on ring/xsk.
func afxdpEngine(cfg TxConfig, tmpl []byte, g xdpprog.GenConfig) (func(int) (txThread, error), func() error, error) {
	return nil, nil, errors.New("tx: afxdp engine needs ring/xsk, which is not in the tree yet")
}
