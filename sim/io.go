package sim

import (
	"time"

	"github.com/kafkasim/kafkasim/core"
)

// IOLatency is the distribution of the time a simulated disk job (an
// fsync) takes, drawn per seed: most jobs take between Min and 2×Median,
// and one in TailOneIn takes up to TailMax, the heavy tail of real devices
// (a flash erase, a queue behind a journal commit, a stalled cloud volume).
type IOLatency struct {
	Min       time.Duration
	Median    time.Duration
	TailOneIn int64 // 0: no tail
	TailMax   time.Duration
}

// IOStats counts what the simulated IO did.
type IOStats struct {
	Submitted int64
	Completed int64
	Tail      int64 // jobs that drew a latency from the tail
	// LatencyMax is the longest latency drawn.
	LatencyMax time.Duration
}

// IO is the simulator's core.IO for one node. A job's work runs when its
// completion fires, a drawn latency after Submit, immediately followed by
// its done callback: so a crash of the node before then (which drops the
// node's pending timers) means the work never ran, the harshest reading of
// "an fsync in flight when the power went".
type IO struct {
	node    *Node
	rand    *core.Rand
	latency IOLatency
	stats   IOStats
}

var _ core.IO = (*IO)(nil)

// NewIO returns the IO of node; rand draws the latencies.
func NewIO(node *Node, rand *core.Rand, latency IOLatency) *IO {
	if node == nil || rand == nil {
		panic("sim: NewIO needs a node and a random source")
	}
	if latency.Min < 0 || latency.Median < latency.Min || latency.TailOneIn < 0 || (latency.TailOneIn > 0 && latency.TailMax < latency.Median) {
		panic("sim: NewIO with an inconsistent latency distribution")
	}
	return &IO{node: node, rand: rand, latency: latency}
}

// Submit implements core.IO.
func (io *IO) Submit(work func() error, done func(error)) {
	if work == nil || done == nil {
		panic("sim: IO.Submit with a nil function")
	}
	io.stats.Submitted++
	latency := io.draw()
	io.node.AfterFunc(latency, func() {
		io.stats.Completed++
		done(work())
	})
}

// draw returns one job's latency.
func (io *IO) draw() time.Duration {
	l := io.latency
	var d time.Duration
	if l.TailOneIn > 0 && io.rand.Int64Range(1, l.TailOneIn) == 1 {
		io.stats.Tail++
		d = time.Duration(io.rand.Int64Range(int64(l.Median), int64(l.TailMax)))
	} else {
		d = time.Duration(io.rand.Int64Range(int64(l.Min), int64(2*l.Median)))
	}
	io.stats.LatencyMax = max(io.stats.LatencyMax, d)
	return d
}

// Stats returns what the IO did so far.
func (io *IO) Stats() IOStats { return io.stats }
