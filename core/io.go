package core

import "time"

// IO runs slow disk work, an fsync above all, away from the node's event
// loop, and reports its completion back to the loop as an event. This is the
// node model's "effects as data" for the one effect whose latency matters
// most: a handler asks for a sync and carries on serving other connections;
// the answer to a producer waiting for durability is sent when the
// completion arrives.
//
// Contract, the same in production and in the simulator:
//   - Submit never runs done before it returns; done runs later on the
//     node's loop, like a timer firing, and never concurrently with another
//     callback of the node.
//   - work may run on another goroutine (production): it must touch nothing
//     but what it was built with (a File to sync), never node state. Its
//     error is handed to done unchanged.
//   - Completions of different submissions may arrive in any order. The
//     caller keeps at most one job in flight per file, so the order of
//     completions of one file is the order of submission.
//   - If the node crashes before done runs, work may or may not have run
//     (an fsync may have reached the device or not): the caller must assume
//     nothing about durability that done did not report.
type IO interface {
	Submit(work func() error, done func(error))
}

// InlineIO runs work at once, inside Submit, and delivers done through the
// clock as a zero-delay timer. It keeps the contract (done never runs
// inside Submit) without concurrency, for tests and environments that have
// no worker pool; work blocks the loop while it runs.
type InlineIO struct {
	Clock Clock
}

// Submit implements IO.
func (io InlineIO) Submit(work func() error, done func(error)) {
	if work == nil || done == nil {
		panic("core: InlineIO.Submit with a nil function")
	}
	err := work()
	io.Clock.AfterFunc(time.Duration(0), func() { done(err) })
}
