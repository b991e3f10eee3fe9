package api

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRuntimeDelta(t *testing.T) {
	a := WorkerRuntime{Rounds: 100, BusyRounds: 40, IdleRounds: 60, Batches: 40, Vectors: 1000, BusyNs: 50_000, UptimeNs: 1_000_000}
	b := WorkerRuntime{Rounds: 300, BusyRounds: 140, IdleRounds: 160, Batches: 140, Vectors: 7400, BusyNs: 300_000, UptimeNs: 2_000_000}
	d := b.Delta(a)
	want := WorkerRuntime{Rounds: 200, BusyRounds: 100, IdleRounds: 100, Batches: 100, Vectors: 6400, BusyNs: 250_000, UptimeNs: 1_000_000,
		VectorsPerBatch: 64, NsPerPacket: 250_000.0 / 6400, IdleRoundShare: 0.5, IdleTimeShare: 0.75}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("delta (-want +got):\n%s", diff)
	}
}
