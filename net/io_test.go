package net

import (
	"errors"
	"sync/atomic"
	"testing"
)

// TestIOPoolRunsOffLoopAndCompletesOnLoop submits jobs from the loop and
// checks that each completion runs as a loop callback with its work's
// error, and that a closed pool runs nothing.
func TestIOPoolRunsOffLoopAndCompletesOnLoop(t *testing.T) {
	loop := NewLoop()
	done := make(chan struct{})
	go func() { loop.Run(); close(done) }()
	defer func() { loop.Stop(); <-done }()
	pool := NewIOPool(loop, 3)
	const jobs = 100
	errFailed := errors.New("failed")
	var completedOffLoop atomic.Int64
	completions := make(chan error, jobs)
	ran := make(chan struct{})
	loop.Post(func() {
		for i := range jobs {
			pool.Submit(func() error {
				if i%10 == 0 {
					return errFailed
				}
				return nil
			}, func(err error) {
				if !loop.inCallback.Load() {
					completedOffLoop.Add(1)
				}
				completions <- err
			})
		}
		close(ran)
	})
	<-ran
	failures := 0
	for range jobs {
		if err := <-completions; errors.Is(err, errFailed) {
			failures++
		}
	}
	pool.Close()
	if failures != jobs/10 {
		t.Errorf("%d completions carried the work's error, want %d", failures, jobs/10)
	}
	if n := completedOffLoop.Load(); n != 0 {
		t.Errorf("%d completions ran off the loop", n)
	}
	// After Close, Submit is a no-op: nothing runs, nothing completes.
	pool.Submit(func() error { t.Error("work ran after Close"); return nil }, func(error) { t.Error("done ran after Close") })
}
