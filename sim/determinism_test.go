package sim

import (
	"bufio"
	"bytes"
	"fmt"
	"testing"
	"time"
)

const (
	// determinismSeeds is how many seeds the normal test run sweeps.
	determinismSeeds = 200
	// determinismRunDuration is the virtual time each seed runs for.
	determinismRunDuration = 4 * time.Second
)

// TestDeterminismSameSeedSameTrace runs the fault-injecting workload for 200
// seeds, each twice, and checks that the two runs of a seed produce the same
// trace hash, that no two seeds produce the same hash, that the nodes saw no
// contract violation, and that the sweep really exercised the faults (so the
// test cannot pass vacuously).
func TestDeterminismSameSeedSameTrace(t *testing.T) {
	seen := make(map[string]uint64)
	var total wlStats
	var events uint64
	for seed := uint64(0); seed < determinismSeeds; seed++ {
		first := wlRun(seed, determinismRunDuration, nil)
		second := wlRun(seed, determinismRunDuration, nil)
		for _, v := range first.violations {
			t.Errorf("seed %d: %s", seed, v)
		}
		hash := first.s.TraceHash()
		if second.s.TraceHash() != hash {
			t.Fatalf("seed %d: two runs diverged:\n%s", seed, firstDifference(seed))
		}
		if other, ok := seen[hash]; ok {
			t.Fatalf("seeds %d and %d produced the same trace hash", other, seed)
		}
		seen[hash] = seed
		events += first.s.EventsExecuted()
		addStats(&total, first.stats)
	}
	t.Logf("%d seeds, %d events per seed on average; totals %+v",
		determinismSeeds, events/determinismSeeds, total)
	for name, count := range map[string]int{
		"responses": total.responses, "timeouts": total.timeouts, "timer stops": total.stops,
		"opens": total.opens, "dial failures": total.dialFailures, "resets": total.resets,
		"crashes": total.crashes, "syncs": total.syncs, "partitions": total.partitions,
		"losses": total.losses, "stalls": total.stalls, "clock jumps": total.jump,
	} { // order-independent: each check is separate
		if count == 0 {
			t.Errorf("the sweep never saw any %s", name)
		}
	}
}

func addStats(total *wlStats, s wlStats) {
	total.requests += s.requests
	total.responses += s.responses
	total.timeouts += s.timeouts
	total.stops += s.stops
	total.opens += s.opens
	total.dialFailures += s.dialFailures
	total.resets += s.resets
	total.crashes += s.crashes
	total.syncs += s.syncs
	total.partitions += s.partitions
	total.losses += s.losses
	total.stalls += s.stalls
	total.jump += s.jump
}

// firstDifference reruns a seed twice with trace writers and returns the
// first line where the traces differ, to make a divergence debuggable.
func firstDifference(seed uint64) string {
	var a, b bytes.Buffer
	wlRun(seed, determinismRunDuration, &a)
	wlRun(seed, determinismRunDuration, &b)
	sa, sb := bufio.NewScanner(&a), bufio.NewScanner(&b)
	for line := 1; ; line++ {
		okA, okB := sa.Scan(), sb.Scan()
		if !okA && !okB {
			return "traces are identical on rerun (divergence depends on the trace writer?)"
		}
		if sa.Text() != sb.Text() {
			return fmt.Sprintf("line %d:\n  %s\n  %s", line, sa.Text(), sb.Text())
		}
	}
}

// TestTraceWriterDoesNotChangeTheRun runs one seed with and without a trace
// writer (which also turns node logging on) and checks that the hashes agree
// and that the written trace is not empty.
func TestTraceWriterDoesNotChangeTheRun(t *testing.T) {
	var text bytes.Buffer
	with := wlRun(3, determinismRunDuration, &text)
	without := wlRun(3, determinismRunDuration, nil)
	if with.s.TraceHash() != without.s.TraceHash() {
		t.Fatal("the trace writer changed the run")
	}
	if !bytes.Contains(text.Bytes(), []byte(" net.frame\n")) || !bytes.Contains(text.Bytes(), []byte("log t=")) {
		t.Fatalf("trace lacks frames or log lines:\n%.2000s", text.String())
	}
}

// BenchmarkDeterminismSeed measures one seed of the determinism workload.
func BenchmarkDeterminismSeed(b *testing.B) {
	seed := uint64(0)
	for b.Loop() {
		h := wlRun(seed, determinismRunDuration, nil)
		b.ReportMetric(float64(h.s.EventsExecuted()), "events/seed")
		seed++
	}
}
