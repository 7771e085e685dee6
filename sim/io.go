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
	// Stalled counts jobs that a stall (StallUntil) made wait past their
	// drawn latency.
	Stalled int64
	// Cancelled counts jobs still in flight when their node crashed: their
	// work never ran (an fsync the power took). CancelledStalled counts the
	// stalled jobs among them: a crash that struck during a stall, while
	// everything waiting on those fsyncs was still parked.
	Cancelled        int64
	CancelledStalled int64
}

// IO is the simulator's core.IO for one node. A job's work runs when its
// completion fires, a drawn latency after Submit, immediately followed by
// its done callback: so a crash of the node before then (which drops the
// node's pending timers) means the work never ran, the harshest reading of
// "an fsync in flight when the power went". A stall (StallUntil) holds
// every completion due during it until its end.
type IO struct {
	node    *Node
	rand    *core.Rand
	latency IOLatency
	stats   IOStats
	// stallUntil is the virtual time at which the current stall ends (zero
	// or past: none).
	stallUntil time.Duration
	// inFlight counts the jobs of the node's current incarnation that have
	// not completed, inFlightStalled those among them that a stall holds;
	// a crash cancels them all (crashed).
	inFlight, inFlightStalled int64
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
	io := &IO{node: node, rand: rand, latency: latency}
	node.OnCrash(io.crashed)
	return io
}

// crashed runs when the node crashes: the completions of the jobs in flight
// were dropped with the node's timers, so their work never runs. The power
// cycle also ends a stall.
func (io *IO) crashed() {
	io.stats.Cancelled += io.inFlight
	io.stats.CancelledStalled += io.inFlightStalled
	io.inFlight, io.inFlightStalled = 0, 0
	io.stallUntil = 0
}

// StallUntil stalls the device until the virtual time until (a cloud
// volume's hiccup, a controller reset): no job completes before then, and
// the jobs whose latency ends during the stall, in flight when it began
// or submitted since, complete at its end, in the order their latencies
// ended. A stall may be extended, never shortened; the node's crash ends
// it.
func (io *IO) StallUntil(until time.Duration) {
	io.stallUntil = max(io.stallUntil, until)
}

// Stalling reports whether a stall holds the jobs submitted now.
func (io *IO) Stalling() bool { return io.node.s.now < io.stallUntil }

// StalledUntil returns the virtual time at which the latest stall ends
// (past once it ended), or zero when none began since the node's last
// crash.
func (io *IO) StalledUntil() time.Duration { return io.stallUntil }

// InFlight reports how many jobs the node's current incarnation submitted
// that have not completed yet.
func (io *IO) InFlight() int64 { return io.inFlight }

// Submit implements core.IO.
func (io *IO) Submit(work func() error, done func(error)) {
	if work == nil || done == nil {
		panic("sim: IO.Submit with a nil function")
	}
	io.stats.Submitted++
	latency := io.draw()
	if !io.node.Alive() {
		// A crashed incarnation's timers never run: the job is cancelled
		// at once.
		io.stats.Cancelled++
		return
	}
	io.inFlight++
	job := &ioJob{work: work, done: done}
	io.node.AfterFunc(latency, func() { io.complete(job) })
}

// ioJob is a job in flight.
type ioJob struct {
	work func() error
	done func(error)
	// stalled is set once a stall held the job's completion.
	stalled bool
}

// complete runs a job whose latency has passed, or holds it until the end
// of the stall that lasts.
func (io *IO) complete(job *ioJob) {
	if wait := io.stallUntil - io.node.s.now; wait > 0 {
		if !job.stalled {
			job.stalled = true
			io.stats.Stalled++
			io.inFlightStalled++
		}
		io.node.AfterFunc(io.localDuration(wait), func() { io.complete(job) })
		return
	}
	io.stats.Completed++
	io.inFlight--
	if job.stalled {
		io.inFlightStalled--
	}
	if io.inFlight < 0 || io.inFlightStalled < 0 || io.inFlightStalled > io.inFlight {
		panic("sim: IO in-flight counts out of range")
	}
	job.done(job.work())
}

// localDuration returns the shortest duration on the node's clock that
// lasts at least d of true virtual time (the clock may drift either way).
func (io *IO) localDuration(d time.Duration) time.Duration {
	c := io.node.clock
	rate := ppm + c.driftPPM
	// local = d × rate / ppm, in parts that cannot overflow; the loops
	// correct the rounding of both conversions.
	local := time.Duration(int64(d)/ppm*rate + int64(d)%ppm*rate/ppm)
	for c.trueDuration(local) < d {
		local++
	}
	for local > 1 && c.trueDuration(local-1) >= d {
		local--
	}
	return local
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
