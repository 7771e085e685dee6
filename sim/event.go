package sim

import "time"

// eventState is where an event is in its life.
type eventState uint8

const (
	eventPending   eventState = iota // in the queue
	eventParked                      // held by a paused node
	eventFired                       // ran
	eventCancelled                   // stopped before it ran
	eventDropped                     // discarded: its node incarnation crashed
)

// event is one scheduled callback. Events are ordered by (at, origin, seq):
// at is when it runs; origin is when it was first due, which differs from at
// only for events deferred by a stall or a pause and keeps those in their
// original order; seq is the unique insertion number that breaks every tie.
type event struct {
	at          time.Duration
	origin      time.Duration
	seq         uint64
	node        *Node
	incarnation uint64
	label       string
	fn          func()
	state       eventState
	index       int // position in the heap, -1 when not in it
}

func (a *event) before(b *event) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	if a.origin != b.origin {
		return a.origin < b.origin
	}
	return a.seq < b.seq
}

// eventHeap implements heap.Interface over events, maintaining each event's
// index so that a stopped timer can be removed at once.
type eventHeap []*event

func (h eventHeap) Len() int           { return len(h) }
func (h eventHeap) Less(i, j int) bool { return h[i].before(h[j]) }

func (h eventHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *eventHeap) Push(x any) {
	ev := x.(*event)
	ev.index = len(*h)
	*h = append(*h, ev)
}

func (h *eventHeap) Pop() any {
	old := *h
	n := len(old)
	ev := old[n-1]
	old[n-1] = nil
	ev.index = -1
	*h = old[:n-1]
	return ev
}
