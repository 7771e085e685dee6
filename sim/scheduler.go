package sim

import (
	"container/heap"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/kafkasim/kafkasim/core"
)

// Limits of the scheduler.
const (
	// eventsMaxDefault bounds how many events one run may execute before the
	// run loop gives up and reports ErrEventsMax. A healthy workload of a few
	// virtual minutes executes far fewer; hitting it means livelock.
	eventsMaxDefault = 100_000_000

	// nodesMax bounds the number of nodes of one simulation.
	nodesMax = 1024

	// nodeNameBytesMax bounds a node name, which also serves as its host name.
	nodeNameBytesMax = 64

	// labelBytesMax bounds an event label. Labels are short tags such as
	// "timer" or "net.frame"; details go through Trace.
	labelBytesMax = 32
)

// ErrEventsMax is returned by the run loops when the event budget set with
// SetEventsMax is exhausted, which usually means the workload livelocked.
var ErrEventsMax = errors.New("sim: event budget exhausted (livelock?)")

// ErrIdle is returned by RunWhile when no event is left to run but the
// condition still holds: nothing can ever make it false.
var ErrIdle = errors.New("sim: no events left while the condition still holds")

// timeNever is a virtual time later than any event.
const timeNever = time.Duration(math.MaxInt64)

// Scheduler runs a simulation: one goroutine, one priority queue of events
// ordered by virtual time, and virtual time that jumps from one event to the
// next. It owns the master random stream of the run, from which every
// component's stream is forked in the order the components are created, so a
// run is fully determined by its seed and the program that drives it.
//
// Every executed event is appended to a running SHA-256 of the trace (see
// TraceHash) and, when SetTraceWriter was called, written out as text.
type Scheduler struct {
	seed    uint64
	now     time.Duration
	seqNext uint64
	queue   eventHeap
	rand    *core.Rand
	network *Network

	nodes       []*Node
	nodesByName map[string]*Node

	hash     hash.Hash
	traceOut io.Writer
	line     []byte

	eventsExecuted uint64
	eventsMax      uint64
	// executing is true while an event's function runs: only then may a
	// disk's crash point unwind a handler (see CrashPoint).
	executing bool
}

// NewScheduler returns an empty simulation whose every random decision derives
// from seed. The simulated network is created at once and owns the first
// stream forked from the master stream.
func NewScheduler(seed uint64) *Scheduler {
	s := &Scheduler{
		seed:        seed,
		rand:        core.NewRand(seed),
		nodesByName: make(map[string]*Node),
		hash:        sha256.New(),
		eventsMax:   eventsMaxDefault,
	}
	s.network = newNetwork(s, s.rand.Fork())
	return s
}

// Seed returns the seed the scheduler was built with.
func (s *Scheduler) Seed() uint64 { return s.seed }

// Now returns the virtual time elapsed since the start of the simulation.
func (s *Scheduler) Now() time.Duration { return s.now }

// Network returns the simulated network shared by all nodes.
func (s *Scheduler) Network() *Network { return s.network }

// Nodes returns the nodes in the order they were added. The caller must not
// modify the returned slice.
func (s *Scheduler) Nodes() []*Node { return s.nodes }

// ForkRand returns a new random stream forked from the master stream, for a
// component of the run (a workload, a fault injector, a disk). Call it in a
// fixed order so that every component gets the same stream on every run.
func (s *Scheduler) ForkRand() *core.Rand { return s.rand.Fork() }

// EventsExecuted returns how many events have run so far.
func (s *Scheduler) EventsExecuted() uint64 { return s.eventsExecuted }

// Pending returns how many events are queued, including timers that were
// stopped lazily and events of crashed nodes that have not been discarded yet.
func (s *Scheduler) Pending() int { return len(s.queue) }

// SetEventsMax sets the event budget of the run (see ErrEventsMax).
func (s *Scheduler) SetEventsMax(eventsMax uint64) {
	if eventsMax == 0 {
		panic("sim: SetEventsMax(0)")
	}
	s.eventsMax = eventsMax
}

// SetTraceWriter makes the scheduler write a human-readable line for every
// executed event and every Trace detail to w (nil turns it off). The text
// written is exactly what TraceHash hashes, so two traces can be diffed to
// find where two runs diverge.
func (s *Scheduler) SetTraceWriter(w io.Writer) { s.traceOut = w }

// TraceHash returns the SHA-256 of the trace so far, in hex.
func (s *Scheduler) TraceHash() string {
	return fmt.Sprintf("%x", s.hash.Sum(nil))
}

// Trace appends a detail line to the trace, attributed to the event that is
// running (or to the set-up, between events). Use it to record decisions and
// observations that the determinism check should cover.
func (s *Scheduler) Trace(format string, args ...any) {
	s.line = append(s.line[:0], "    "...)
	s.line = fmt.Appendf(s.line, format, args...)
	s.line = append(s.line, '\n')
	s.emitLine()
}

func (s *Scheduler) emitLine() {
	s.hash.Write(s.line)
	if s.traceOut != nil {
		// A failing trace writer must not change the run; the hash is the
		// authoritative trace.
		_, _ = s.traceOut.Write(s.line)
	}
}

func (s *Scheduler) traceEvent(ev *event) {
	s.line = append(s.line[:0], 't', '=')
	s.line = strconv.AppendInt(s.line, int64(ev.at), 10)
	s.line = append(s.line, " #"...)
	s.line = strconv.AppendUint(s.line, ev.seq, 10)
	s.line = append(s.line, ' ')
	if ev.node == nil {
		s.line = append(s.line, '-')
	} else {
		s.line = append(s.line, ev.node.name...)
		s.line = append(s.line, '/')
		s.line = strconv.AppendUint(s.line, ev.incarnation, 10)
	}
	s.line = append(s.line, ' ')
	s.line = append(s.line, ev.label...)
	s.line = append(s.line, '\n')
	s.emitLine()
}

// After schedules f to run as a scheduler-level event (one that belongs to no
// node, such as a fault injection) once d of virtual time has passed.
func (s *Scheduler) After(d time.Duration, label string, f func()) {
	if d < 0 {
		d = 0
	}
	s.schedule(nil, s.now+d, label, f)
}

// schedule queues f for node n's current incarnation (or for no node) at
// virtual time at.
func (s *Scheduler) schedule(n *Node, at time.Duration, label string, f func()) *event {
	if at < s.now {
		panic(fmt.Sprintf("sim: event %q scheduled in the past (%v < %v)", label, at, s.now))
	}
	if len(label) == 0 || len(label) > labelBytesMax {
		panic(fmt.Sprintf("sim: bad event label %q", label))
	}
	if f == nil {
		panic("sim: event without a function")
	}
	ev := &event{at: at, origin: at, seq: s.seqNext, node: n, label: label, fn: f, index: -1}
	if n != nil {
		ev.incarnation = n.incarnation
	}
	s.seqNext++
	heap.Push(&s.queue, ev)
	return ev
}

// Step runs the next event and reports whether there was one to run. It
// returns false when the queue is empty or the event budget is exhausted.
func (s *Scheduler) Step() bool { return s.step(timeNever) }

// RunUntil runs every event due at or before virtual time t, then advances
// virtual time to t.
func (s *Scheduler) RunUntil(t time.Duration) error {
	for s.step(t) {
	}
	if s.Exhausted() {
		return ErrEventsMax
	}
	if t > s.now {
		s.now = t
	}
	return nil
}

// RunFor runs for d of virtual time from now.
func (s *Scheduler) RunFor(d time.Duration) error { return s.RunUntil(s.now + d) }

// RunWhile runs events as long as cond returns true. It returns nil once cond
// is false, ErrIdle if the queue runs dry first, and ErrEventsMax if the event
// budget runs out first.
func (s *Scheduler) RunWhile(cond func() bool) error {
	for cond() {
		if !s.step(timeNever) {
			if s.Exhausted() {
				return ErrEventsMax
			}
			return ErrIdle
		}
	}
	return nil
}

// Exhausted reports whether the event budget is used up.
func (s *Scheduler) Exhausted() bool { return s.eventsExecuted >= s.eventsMax }

// step runs the next runnable event due no later than limit. Events of crashed
// incarnations are discarded, events of paused nodes are parked on the node,
// and events of busy nodes are moved to the end of the node's busy period.
func (s *Scheduler) step(limit time.Duration) bool {
	for len(s.queue) > 0 && s.queue[0].at <= limit {
		if s.Exhausted() {
			return false
		}
		ev := heap.Pop(&s.queue).(*event)
		if !s.runnable(ev) {
			continue
		}
		s.execute(ev)
		return true
	}
	return false
}

func (s *Scheduler) runnable(ev *event) bool {
	if ev.state != eventPending {
		panic(fmt.Sprintf("sim: queued event %q in state %d", ev.label, ev.state))
	}
	n := ev.node
	if n == nil {
		return true
	}
	if !n.alive || ev.incarnation != n.incarnation {
		ev.state = eventDropped
		return false
	}
	if n.paused {
		ev.state = eventParked
		n.parked = append(n.parked, ev)
		return false
	}
	if n.busyUntil > ev.at {
		// Keep origin and seq: the deferred events of a node keep their order
		// among themselves and run before its events first due at busyUntil.
		ev.at = n.busyUntil
		heap.Push(&s.queue, ev)
		return false
	}
	return true
}

func (s *Scheduler) execute(ev *event) {
	if ev.at < s.now {
		panic(fmt.Sprintf("sim: time went backwards: event at %v, now %v", ev.at, s.now))
	}
	s.now = ev.at
	ev.state = eventFired
	s.eventsExecuted++
	s.traceEvent(ev)
	s.run(ev.fn)
}

// run calls an event's function. A crash point reached inside it unwinds the
// function by a panic, recovered here: the node crashes at that point, and
// the rest of its handler never runs. Any other panic goes on (re-raised
// from the deferred call, whose traceback still shows where it started).
func (s *Scheduler) run(fn func()) {
	s.executing = true
	defer func() {
		s.executing = false
		if recovered := recover(); recovered != nil {
			hit, ok := recovered.(crashPointHit)
			if !ok {
				panic(recovered)
			}
			s.crashAtPoint(hit)
		}
	}()
	fn()
}

// requeue puts a parked event back on the queue at the current time, keeping
// its origin and sequence number so parked events keep their order.
func (s *Scheduler) requeue(ev *event) {
	if ev.state != eventParked {
		panic(fmt.Sprintf("sim: requeue of event %q in state %d", ev.label, ev.state))
	}
	ev.state = eventPending
	if ev.at < s.now {
		ev.at = s.now
	}
	heap.Push(&s.queue, ev)
}

// cancel removes a pending or parked event so that it never runs.
func (s *Scheduler) cancel(ev *event) {
	switch ev.state {
	case eventPending:
		heap.Remove(&s.queue, ev.index)
	case eventParked:
		// It stays in the node's parked list and is skipped on Resume.
	default:
		panic(fmt.Sprintf("sim: cancel of event %q in state %d", ev.label, ev.state))
	}
	ev.state = eventCancelled
}
