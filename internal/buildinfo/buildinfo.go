// Package buildinfo is the samepath_build_info metric that every daemon
// (samepathd, samepath-control) exports: a gauge of 1 whose labels say the
// version (internal/version) and the Go release it was built with.
package buildinfo

import (
	"github.com/prometheus/client_golang/prometheus"

	"samepath/internal/version"
)

// Name is the metric's name.
const Name = "samepath_build_info"

// Desc describes samepath_build_info{version,goversion}.
func Desc() *prometheus.Desc {
	return prometheus.NewDesc(Name, "Always 1; the labels say the samepath version and the Go release of the binary.", []string{"version", "goversion"}, nil)
}

// Metric is samepath_build_info's sample for d (from Desc).
func Metric(d *prometheus.Desc) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, 1, version.Get(), version.GoVersion())
}

// Collector returns a collector of samepath_build_info alone.
func Collector() prometheus.Collector { return collector{Desc()} }

type collector struct{ d *prometheus.Desc }

func (c collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.d }
func (c collector) Collect(ch chan<- prometheus.Metric) { ch <- Metric(c.d) }
