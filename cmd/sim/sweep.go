package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kafkasim/kafkasim/sim/scenario"
)

// seedOutcome is what a sweep keeps of one run: a few words, so that the
// reorder buffer stays small however large the runs' histories were.
type seedOutcome struct {
	index   int64 // position in the sweep (or the shard), from 0
	seed    uint64
	passed  bool
	verdict string
	// faults is the swarmed subset of faults the seed ran, empty without
	// swarm.
	faults string
}

// shard is the part of a sweep that one invocation runs: the seeds
// first+k*stride+offset for k in [0, count).
type shard struct {
	first  uint64
	offset uint64
	stride uint64
	count  int64
}

// newShard picks, from the seeds first .. first+seeds-1, those s with
// (s - first) mod shardCount = shardIndex - 1. Counting the seeds rather
// than listing them keeps a billion-seed sweep in constant memory.
func newShard(first uint64, seeds, shardIndex, shardCount int64) shard {
	s := shard{first: first, offset: uint64(shardIndex - 1), stride: uint64(shardCount)}
	if seeds > shardIndex-1 {
		s.count = (seeds - (shardIndex - 1) + shardCount - 1) / shardCount
	}
	return s
}

// seed returns the k-th seed of the shard.
func (s shard) seed(k int64) uint64 { return s.first + s.offset + uint64(k)*s.stride }

// sweep runs the seeds of o's shard on o.parallel workers and prints one
// line per seed in seed order, the reproduce command of each failing
// seed, and a summary.
func sweep(o options, env environment, stdout, stderr io.Writer) int {
	seeds := newShard(o.seed, o.seeds, o.shardIndex, o.shardCount)
	start := env.now()
	bar := newProgressBar(env.progress, seeds.count, env.now)
	var failing []uint64
	work := func(k int64) seedOutcome { return runSeed(env, seeds.seed(k), o.faults, o.swarm, k) }
	emit := func(out seedOutcome) {
		bar.clear()
		status := "ok  "
		if !out.passed {
			status = "FAIL"
			failing = append(failing, out.seed)
		}
		fmt.Fprintf(stdout, "[%d/%d] %s seed %d: %s\n", out.index+1, seeds.count, status, out.seed, out.verdict)
		if !out.passed {
			fmt.Fprintf(stdout, "  reproduce: %s\n", reproduceCommand(out.seed, o.faults, o.swarm))
			if out.faults != "" {
				fmt.Fprintf(stdout, "  swarmed faults: %s\n", out.faults)
			}
		}
		bar.draw()
	}
	runInOrder(seeds.count, int(o.parallel), work, emit, bar.completed)
	bar.clear()
	fmt.Fprintf(stdout, "%d passed, %d failed (%s)\n", seeds.count-int64(len(failing)), len(failing), sweepDescription(o))
	if len(failing) > 0 {
		fmt.Fprintf(stdout, "failing seeds: %s\n", joinSeeds(failing))
	}
	fmt.Fprintf(stderr, "sim: %d seeds took %v of wall time, %d at a time\n", seeds.count, env.now().Sub(start).Round(time.Millisecond), o.parallel)
	if len(failing) > 0 {
		return exitFailed
	}
	return exitPassed
}

// sweepDescription names the seeds, the shard and the faults of a sweep,
// as its arguments gave them.
func sweepDescription(o options) string {
	last := o.seed + uint64(o.seeds-1)
	text := fmt.Sprintf("seeds %d..%d", o.seed, last)
	if o.shardCount > 1 {
		text += fmt.Sprintf(", shard %d/%d", o.shardIndex, o.shardCount)
	}
	text += ", faults " + o.faults.String()
	if o.swarm {
		text += ", swarmed"
	}
	return text
}

func joinSeeds(seeds []uint64) string {
	words := make([]string, len(seeds))
	for i, seed := range seeds {
		words[i] = fmt.Sprint(seed)
	}
	return strings.Join(words, " ")
}

// runSeed runs one seed of a sweep. A panic (a broken assertion in the
// broker) fails that seed instead of killing the whole sweep; its
// reproduce command shows the stack.
func runSeed(env environment, seed uint64, faults scenario.Faults, swarm bool, index int64) (out seedOutcome) {
	out = seedOutcome{index: index, seed: seed}
	defer func() {
		if recovered := recover(); recovered != nil {
			firstLine, _, _ := strings.Cut(fmt.Sprint(recovered), "\n")
			out.passed, out.verdict = false, "FAIL: panic: "+firstLine
		}
	}()
	cfg := derive(seed, faults, swarm)
	if swarm {
		out.faults = cfg.Faults.String()
	}
	result := env.simulate(cfg, scenario.Options{})
	out.passed, out.verdict = result.Passed(), result.Verdict()
	return out
}

// runInOrder calls work(k) for k in [0, count) on `parallel` goroutines
// and emit with each outcome in order of k, from this goroutine: a
// reorder buffer holds outcomes that finished before an earlier one.
// Work is handed out at most windowMax ahead of the next outcome to emit,
// which bounds the buffer. completed is called with each outcome as it
// finishes, in any order.
func runInOrder(count int64, parallel int, work func(int64) seedOutcome, emit, completed func(seedOutcome)) {
	windowMax := int64(4 * parallel)
	jobs := make(chan int64)
	results := make(chan seedOutcome)
	for range parallel {
		go func() {
			for k := range jobs {
				results <- work(k)
			}
		}()
	}
	pending := map[int64]seedOutcome{}
	for sent, next := int64(0), int64(0); next < count; {
		// A nil channel disables the send while the window is full or
		// every seed has been handed out.
		var send chan int64
		if sent < count && sent < next+windowMax {
			send = jobs
		}
		select {
		case send <- sent:
			sent++
		case out := <-results:
			completed(out)
			pending[out.index] = out
			for ready, ok := pending[next]; ok; ready, ok = pending[next] {
				delete(pending, next)
				emit(ready)
				next++
			}
		}
	}
	close(jobs)
}
