package net

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/kafkasim/kafkasim/core"
)

// Loop is a node's event loop: one goroutine (the one calling Run) runs every
// callback of the node, one at a time, in the order they were posted. Other
// goroutines (connection readers and writers, timers) hand work to it with
// Post. This gives production code the execution model of core: callbacks of
// one node never run concurrently.
//
// The loop's queue is not bounded by itself; its producers are: each
// connection has at most TCPOptions.ReadAheadFramesMax frames waiting on the
// loop, and timers are as many as the node sets.
type Loop struct {
	mu      sync.Mutex
	queue   []func()
	spare   []func()
	stopped bool
	wake    chan struct{}
	running atomic.Bool
	// inCallback is true while the loop runs a callback, so tests can assert
	// that handlers run on the loop.
	inCallback atomic.Bool
}

// NewLoop returns a loop that is not yet running.
func NewLoop() *Loop {
	return &Loop{wake: make(chan struct{}, 1)}
}

// Post queues f to run on the loop and reports whether it was accepted;
// after Stop it is dropped and Post returns false. Post never blocks and may
// be called from any goroutine, including the loop itself.
func (l *Loop) Post(f func()) bool {
	if f == nil {
		panic("net: Post(nil)")
	}
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return false
	}
	l.queue = append(l.queue, f)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
	return true
}

// Run runs posted functions until Stop. Functions still queued when Stop is
// called are dropped. Run panics if the loop is already running.
func (l *Loop) Run() {
	if !l.running.CompareAndSwap(false, true) {
		panic("net: Loop.Run called twice")
	}
	defer l.running.Store(false)
	for {
		batch, ok := l.take()
		if !ok {
			return
		}
		for i, f := range batch {
			batch[i] = nil
			if l.isStopped() {
				return
			}
			l.inCallback.Store(true)
			f()
			l.inCallback.Store(false)
		}
		l.spare = batch[:0]
	}
}

// take waits for queued functions and returns them all, or false once the
// loop is stopped.
func (l *Loop) take() ([]func(), bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.queue) == 0 && !l.stopped {
		l.mu.Unlock()
		<-l.wake
		l.mu.Lock()
	}
	if l.stopped {
		l.queue = nil
		return nil, false
	}
	batch := l.queue
	l.queue = l.spare
	l.spare = nil
	return batch, true
}

func (l *Loop) isStopped() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stopped
}

// Stop makes Run return after the function it is running, if any. It may be
// called from any goroutine, more than once.
func (l *Loop) Stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// queued returns how many functions wait to run, for tests.
func (l *Loop) queued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue)
}

// Clock is the production core.Clock: Now reads the wall clock, and timers
// are time.AfterFunc timers whose callbacks are posted to the loop.
type Clock struct {
	loop *Loop
}

var _ core.Clock = (*Clock)(nil)

// NewClock returns a clock whose timers run on loop.
func NewClock(loop *Loop) *Clock {
	if loop == nil {
		panic("net: NewClock(nil)")
	}
	return &Clock{loop: loop}
}

// Now returns the wall-clock time.
func (c *Clock) Now() time.Time { return time.Now() }

// AfterFunc runs f on the loop once d has elapsed (as a separate callback at
// once if d <= 0). It must be called on the loop, like all node code.
func (c *Clock) AfterFunc(d time.Duration, f func()) core.Timer {
	if f == nil {
		panic("net: AfterFunc with a nil function")
	}
	t := &timer{f: f}
	run := func() { t.run() }
	if d <= 0 {
		c.loop.Post(run)
		return t
	}
	t.underlying = time.AfterFunc(d, func() { c.loop.Post(run) })
	return t
}

// timer is a core.Timer. Its state is touched only on the loop, which is
// what makes Stop exact: a timer whose underlying time.Timer already fired,
// but whose callback still waits in the loop's queue, is stopped by setting
// stopped before the queued callback looks at it.
type timer struct {
	f          func()
	underlying *time.Timer
	stopped    bool
	fired      bool
}

func (t *timer) run() {
	if t.stopped {
		return
	}
	t.fired = true
	t.f()
}

// Stop cancels the call if it has not run yet; see core.Timer. It must be
// called on the loop.
func (t *timer) Stop() bool {
	if t.stopped || t.fired {
		return false
	}
	t.stopped = true
	if t.underlying != nil {
		t.underlying.Stop()
	}
	return true
}
