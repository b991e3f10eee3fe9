package daemon

import (
	"github.com/prometheus/client_golang/prometheus"

	"samepath/ctl/api"
)

// counterCollector exports the per-queue counters at scrape time, so the
// poll loop never touches Prometheus.
type counterCollector struct {
	read                          func() api.Counters
	rxp, rxb, txp, txb, drop, idl *prometheus.Desc
}

func newCounterCollector(read func() api.Counters) *counterCollector {
	l := []string{"port"}
	return &counterCollector{
		read: read,
		rxp:  prometheus.NewDesc("samepath_rx_packets_total", "Packets received per queue.", l, nil),
		rxb:  prometheus.NewDesc("samepath_rx_bytes_total", "Bytes received per queue.", l, nil),
		txp:  prometheus.NewDesc("samepath_tx_packets_total", "Packets transmitted per queue.", l, nil),
		txb:  prometheus.NewDesc("samepath_tx_bytes_total", "Bytes transmitted per queue.", l, nil),
		drop: prometheus.NewDesc("samepath_drops_total", "Packets dropped per queue and reason.", []string{"port", "reason"}, nil),
		idl:  prometheus.NewDesc("samepath_poll_idle_ratio", "Share of poll rounds that found no packet.", l, nil),
	}
}

func (c *counterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.rxp, c.rxb, c.txp, c.txb, c.drop, c.idl} {
		ch <- d
	}
}

func (c *counterCollector) Collect(ch chan<- prometheus.Metric) {
	for _, q := range c.read().Queues {
		ch <- prometheus.MustNewConstMetric(c.rxp, prometheus.CounterValue, float64(q.RxPackets), q.Port)
		ch <- prometheus.MustNewConstMetric(c.rxb, prometheus.CounterValue, float64(q.RxBytes), q.Port)
		ch <- prometheus.MustNewConstMetric(c.txp, prometheus.CounterValue, float64(q.TxPackets), q.Port)
		ch <- prometheus.MustNewConstMetric(c.txb, prometheus.CounterValue, float64(q.TxBytes), q.Port)
		for r, n := range q.Drops {
			ch <- prometheus.MustNewConstMetric(c.drop, prometheus.CounterValue, float64(n), q.Port, r)
		}
		ch <- prometheus.MustNewConstMetric(c.idl, prometheus.GaugeValue, q.IdleRatio, q.Port)
	}
}

// NewRegistry returns a registry with Go/process collectors and the queue
// counters read by read.
func NewRegistry(read func() api.Counters) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}), newCounterCollector(read))
	return reg
}
