package daemon

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"samepath/ctl/api"
	"samepath/dp"
)

// RuntimeBackend is a Backend whose workers' show-runtime figures the
// API serves at GET /v1/runtime.
type RuntimeBackend interface {
	Runtime() api.Runtime
}

// Runtime implements RuntimeBackend.
func (d *Daemon) Runtime() api.Runtime { return WorkersRuntime(d.workers, d.cpus) }

// WorkersRuntime renders the workers' figures; cpus[i] is worker i's CPU
// (-1 or missing: not pinned).
func WorkersRuntime(ws []*dp.Worker, cpus []int) api.Runtime {
	out := api.Runtime{Workers: []api.WorkerRuntime{}}
	for i, w := range ws {
		r := w.Runtime()
		cpu := -1
		if i < len(cpus) {
			cpu = cpus[i]
		}
		wr := api.WorkerRuntime{Worker: i, CPU: cpu, Ports: []string{},
			Rounds: r.Rounds, BusyRounds: r.BusyRounds, IdleRounds: r.IdleRounds, Batches: r.Batches,
			Vectors: r.Vectors, Originated: r.Originated, BusyNs: r.Busy.Nanoseconds(), WaitNs: r.Waited.Nanoseconds(),
			Waits: r.Waits, UptimeNs: r.Uptime.Nanoseconds()}
		for _, p := range w.Ports() {
			wr.Ports = append(wr.Ports, p.Name())
		}
		wr.Derive()
		out.Workers = append(out.Workers, wr)
	}
	return out
}

func runtimeRoutes(v1 *http.ServeMux, b RuntimeBackend) {
	v1.HandleFunc("GET /v1/runtime", func(w http.ResponseWriter, _ *http.Request) { reply(w, b.Runtime()) })
}

// runtimeCollector exports the workers' show-runtime figures at scrape
// time: ns per packet is rate(busy_seconds) / rate(vectors), vectors per
// batch rate(vectors) / rate(batches), the idle share of time 1 -
// rate(busy_seconds).
type runtimeCollector struct {
	read                                       func() api.Runtime
	rounds, busyRounds, batches, vectors, orig *prometheus.Desc
	busy, wait, waits                          *prometheus.Desc
}

// NewRuntimeCollector returns the collector of read's figures.
func NewRuntimeCollector(read func() api.Runtime) prometheus.Collector {
	l := []string{"worker", "cpu"}
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("samepath_worker_"+name, help, l, nil)
	}
	return &runtimeCollector{read: read,
		rounds:     d("rounds_total", "Poll rounds of the worker over all its ports."),
		busyRounds: d("busy_rounds_total", "Poll rounds that received or originated a frame."),
		batches:    d("batches_total", "Non-empty receives (one port's frames of one round); rate(vectors)/rate(batches) is vectors per batch."),
		vectors:    d("vectors_total", "Packets the worker received, on all its ports."),
		orig:       d("originated_total", "Frames the worker's pipeline made itself (the TCP terminator's)."),
		busy:       d("busy_seconds_total", "Time of the busy poll rounds; rate(busy)/rate(vectors) is the time per packet, 1-rate(busy) the idle share."),
		wait:       d("wait_seconds_total", "Time the idle worker blocked waiting for frames."),
		waits:      d("waits_total", "Blocking waits of the idle worker."),
	}
}

func (c *runtimeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.rounds, c.busyRounds, c.batches, c.vectors, c.orig, c.busy, c.wait, c.waits} {
		ch <- d
	}
}

func (c *runtimeCollector) Collect(ch chan<- prometheus.Metric) {
	for _, w := range c.read().Workers {
		l := []string{itoa(w.Worker), itoa(w.CPU)}
		m := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
		}
		m(c.rounds, float64(w.Rounds))
		m(c.busyRounds, float64(w.BusyRounds))
		m(c.batches, float64(w.Batches))
		m(c.vectors, float64(w.Vectors))
		m(c.orig, float64(w.Originated))
		m(c.busy, float64(w.BusyNs)/1e9)
		m(c.wait, float64(w.WaitNs)/1e9)
		m(c.waits, float64(w.Waits))
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
