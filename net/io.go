package net

import (
	"sync"

	"github.com/kafkasim/kafkasim/core"
)

// IOPool is the production core.IO: a fixed set of worker goroutines runs
// submitted disk work (fsyncs of different files in parallel) and posts each
// completion to the node's loop.
//
// Closing a file whose sync is still running on a worker is safe: os.File
// keeps the descriptor open until every operation in progress on it has
// returned (internal/poll's reference count), so a late fsync never hits a
// reused descriptor.
type IOPool struct {
	loop *Loop
	jobs chan ioJob
	wg   sync.WaitGroup

	mu     sync.Mutex
	closed bool
}

type ioJob struct {
	work func() error
	done func(error)
}

// ioQueueJobsMax bounds the submitted jobs waiting for a worker. The broker
// keeps at most one sync in flight per partition file, so the queue is
// bounded by the partition count anyway; a full queue makes Submit wait for
// a worker, which only slows the loop down, as an inline fsync would.
const ioQueueJobsMax = 4096

// NewIOPool starts workers goroutines that post completions to loop.
func NewIOPool(loop *Loop, workers int) *IOPool {
	if loop == nil || workers < 1 {
		panic("net: NewIOPool needs a loop and at least one worker")
	}
	p := &IOPool{loop: loop, jobs: make(chan ioJob, ioQueueJobsMax)}
	p.wg.Add(workers)
	for range workers {
		go p.work()
	}
	return p
}

var _ core.IO = (*IOPool)(nil)

// Submit implements core.IO. After Close, work is not run and done is not
// called (the loop is shutting down and nobody waits for the answer).
func (p *IOPool) Submit(work func() error, done func(error)) {
	if work == nil || done == nil {
		panic("net: IOPool.Submit with a nil function")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.jobs <- ioJob{work: work, done: done}
}

func (p *IOPool) work() {
	defer p.wg.Done()
	for job := range p.jobs {
		err := job.work()
		done := job.done
		p.loop.Post(func() { done(err) })
	}
}

// Close stops accepting work and waits until every submitted job has run.
// Completions of jobs that finish after the loop stopped are dropped.
func (p *IOPool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.jobs)
	p.mu.Unlock()
	p.wg.Wait()
}
