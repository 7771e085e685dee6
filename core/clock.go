package core

import "time"

// Clock is a node's source of time. In production it reads the wall clock; in
// the simulator it reads virtual time, which only advances between events.
type Clock interface {
	// Now returns the current time. Successive calls inside one callback return
	// the same or a later time. The simulator may inject drift and jumps, so
	// Now is not guaranteed to be monotonic across callbacks: code that measures
	// elapsed time for timeouts must use timers, not differences of Now.
	Now() time.Time

	// AfterFunc arranges for f to be called on the node's event loop once d has
	// elapsed (at once, as a separate event, if d <= 0). f never runs inside
	// the call to AfterFunc and never concurrently with another callback of the
	// same node. Timers of a node that crashes never fire.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call scheduled by Clock.AfterFunc.
type Timer interface {
	// Stop cancels the call. It returns true if the call was cancelled, false
	// if it had already run or had already been stopped.
	Stop() bool
}
