package broker

import "time"

// latencyBoundsSeconds are the upper bounds of the latency histograms'
// buckets, from 100 microseconds (a request answered on the loop) to 30
// seconds (a long-polling fetch at its longest wait, a stalled disk).
var latencyBoundsSeconds = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
}

// histogram counts durations in fixed buckets, as a Prometheus histogram
// does. It is a plain value updated on the loop; its snapshot is a copy.
type histogram struct {
	// counts[i] counts observations at most latencyBoundsSeconds[i] and
	// above the bound before it; the last element counts the rest. It is
	// allocated by the first observation, so the zero histogram is ready.
	counts     []uint64
	count      uint64
	sumSeconds float64
}

// observe adds one duration. A negative duration (the clock stepped back
// between two readings, which the simulator's clock faults do) counts as
// zero rather than corrupting the sum.
func (h *histogram) observe(d time.Duration) {
	if h.counts == nil {
		h.counts = make([]uint64, len(latencyBoundsSeconds)+1)
	}
	seconds := max(d, 0).Seconds()
	bucket := len(latencyBoundsSeconds)
	for i, bound := range latencyBoundsSeconds {
		if seconds <= bound {
			bucket = i
			break
		}
	}
	h.counts[bucket]++
	h.count++
	h.sumSeconds += seconds
}

// snapshot returns the histogram with cumulative bucket counts.
func (h *histogram) snapshot() Histogram {
	s := Histogram{
		BoundsSeconds:    latencyBoundsSeconds,
		CumulativeCounts: make([]uint64, len(latencyBoundsSeconds)),
		Count:            h.count,
		SumSeconds:       h.sumSeconds,
	}
	var running uint64
	for i := range latencyBoundsSeconds {
		if h.counts != nil {
			running += h.counts[i]
		}
		s.CumulativeCounts[i] = running
	}
	return s
}

// Histogram is a snapshot of a latency histogram in Prometheus' shape:
// CumulativeCounts[i] observations took at most BoundsSeconds[i]; Count
// includes those above the last bound (the +Inf bucket).
type Histogram struct {
	// BoundsSeconds is shared between snapshots: do not modify it.
	BoundsSeconds    []float64
	CumulativeCounts []uint64
	Count            uint64
	SumSeconds       float64
}
