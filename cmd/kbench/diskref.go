package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"syscall"
	"time"
)

// The disk reference is the physical floor of a durable acknowledgement on
// this machine's disk, measured in the same run as the latency cases: it
// appends records of the case's size at the case's rate to a file on the
// filesystem of the server's data directory, open loop like the latency
// producer (record i is due at start + i/rate; the records due together go
// out in one write, as the broker appends a batch), while one loop runs
// fdatasync back to back, each covering whatever was appended before it
// began, as a group commit does. A record's latency runs from the write
// that appended it to the end of the first fdatasync that began after that
// write returned: what a broker that did nothing but append and sync would
// add, one to two fsyncs. Anything a broker adds beyond it is its own
// processing and the client's.

// diskReferenceWriteBytesMax bounds one write of the reference: records
// due together are appended in writes of at most this size, the batch
// size of the latency producer.
const diskReferenceWriteBytesMax = producerBatchBytesMax

// diskReport summarizes one disk reference run.
type diskReport struct {
	records int
	elapsed time.Duration
	// appended and due are the p50, p99 and p99.9 of the time from the
	// write that appended a record, and from its due time, to the end of
	// the fdatasync that covered it.
	appended, due [3]time.Duration
	// syncs counts the fdatasync calls; syncQuantiles are their p50, p99
	// and p99.9 durations.
	syncs         int
	syncQuantiles [3]time.Duration
}

// syncMark is one completed fdatasync: it covered the first covered
// records and ended at done (since the run's start) after took.
type syncMark struct {
	covered    int
	done, took time.Duration
}

// diskRun holds what one disk reference run noted.
type diskRun struct {
	start time.Time
	rate  float64
	// appended is when the write carrying record i began, since start.
	appended []time.Duration
	// published counts the records whose write returned; the syncer
	// reads appended only below it.
	published atomic.Int64
	// wake holds one token when records were published since the syncer
	// last looked.
	wake  chan struct{}
	marks []syncMark
}

// measureDisk runs the disk reference in dir at rate records of
// valueBytes per second for duration, and removes its file.
func measureDisk(ctx context.Context, dir string, valueBytes int, rate float64, duration time.Duration) (diskReport, error) {
	records := int(rate * duration.Seconds())
	if records < 1 || records > latencyRecordsMax || valueBytes < 1 || valueBytes > diskReferenceWriteBytesMax {
		return diskReport{}, fmt.Errorf("disk reference of %d records of %d B is outside [1, %d] records of [1, %d] B",
			records, valueBytes, latencyRecordsMax, diskReferenceWriteBytesMax)
	}
	file, err := os.CreateTemp(dir, "kbench-disk-reference-")
	if err != nil {
		return diskReport{}, fmt.Errorf("disk reference: %w", err)
	}
	defer os.Remove(file.Name())
	defer file.Close()
	run := &diskRun{rate: rate, appended: make([]time.Duration, records), wake: make(chan struct{}, 1)}
	syncCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	run.start = time.Now()
	synced := make(chan error, 1)
	go func() { synced <- run.syncLoop(syncCtx, file, records) }()
	appendErr := run.appendLoop(ctx, file, valueBytes)
	if appendErr != nil {
		cancel()
	}
	if err := cmpOr(appendErr, <-synced); err != nil {
		return diskReport{}, fmt.Errorf("disk reference: %w", err)
	}
	return run.report(), nil
}

// scheduled is record i's due time as an offset from the start.
func (r *diskRun) scheduled(i int) time.Duration {
	return time.Duration(float64(i) * 1e9 / r.rate)
}

// appendLoop writes every record at its due time, the records due together
// in one write, and publishes each write to the sync loop.
func (r *diskRun) appendLoop(ctx context.Context, file *os.File, valueBytes int) error {
	buffer := make([]byte, diskReferenceWriteBytesMax)
	for i := range buffer {
		buffer[i] = byte(i)
	}
	perWrite := diskReferenceWriteBytesMax / valueBytes
	for next := 0; next < len(r.appended); {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		now := time.Since(r.start)
		if wait := r.scheduled(next) - now; wait >= latencySleepMin {
			time.Sleep(wait)
			continue
		}
		// Every record due by now goes into this write (at least the
		// next one, whose due time is at most latencySleepMin away).
		last := min(int(now.Seconds()*r.rate)+1, len(r.appended), next+perWrite)
		last = max(last, next+1)
		for i := next; i < last; i++ {
			r.appended[i] = now
		}
		if _, err := file.Write(buffer[:(last-next)*valueBytes]); err != nil {
			return err
		}
		r.published.Store(int64(last))
		select {
		case r.wake <- struct{}{}:
		default:
		}
		next = last
	}
	return nil
}

// syncLoop runs fdatasync back to back while records wait for one, each
// covering the records published before it began.
func (r *diskRun) syncLoop(ctx context.Context, file *os.File, records int) error {
	fd := int(file.Fd())
	for covered := 0; covered < records; {
		published := int(r.published.Load())
		if published == covered {
			select {
			case <-r.wake:
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		began := time.Now()
		if err := syscall.Fdatasync(fd); err != nil {
			return err
		}
		ended := time.Now()
		r.marks = append(r.marks, syncMark{covered: published, done: ended.Sub(r.start), took: ended.Sub(began)})
		covered = published
	}
	return nil
}

// report computes each record's latency from the sync that covered it.
// Call it only after both loops ended.
func (r *diskRun) report() diskReport {
	rep := diskReport{records: len(r.appended), syncs: len(r.marks)}
	if len(r.marks) > 0 {
		rep.elapsed = r.marks[len(r.marks)-1].done
	}
	appended := make(latencies, 0, len(r.appended))
	due := make(latencies, 0, len(r.appended))
	mark := 0
	for i, at := range r.appended {
		for r.marks[mark].covered <= i {
			mark++
		}
		done := r.marks[mark].done
		appended = append(appended, done-at)
		due = append(due, done-r.scheduled(i))
	}
	took := make(latencies, 0, len(r.marks))
	for _, m := range r.marks {
		took = append(took, m.took)
	}
	for _, column := range []latencies{appended, due, took} {
		slices.Sort(column)
	}
	for q, quantile := range reportQuantiles {
		rep.appended[q], rep.due[q], rep.syncQuantiles[q] =
			appended.percentile(quantile), due.percentile(quantile), took.percentile(quantile)
	}
	return rep
}

// diskSummary is the median over runs of every figure of the disk
// reference.
func diskSummary(runs []diskReport) diskReport {
	out := diskReport{}
	pick := func(value func(diskReport) time.Duration) time.Duration {
		values := make(latencies, 0, len(runs))
		for _, run := range runs {
			values = append(values, value(run))
		}
		slices.Sort(values)
		return values.percentile(0.5)
	}
	for _, run := range runs {
		out.records += run.records
		out.syncs += run.syncs
		out.elapsed += run.elapsed
	}
	for q := range reportQuantiles {
		out.appended[q] = pick(func(r diskReport) time.Duration { return r.appended[q] })
		out.due[q] = pick(func(r diskReport) time.Duration { return r.due[q] })
		out.syncQuantiles[q] = pick(func(r diskReport) time.Duration { return r.syncQuantiles[q] })
	}
	return out
}

// appendReference is the produce path's floor on this disk, measured in
// every round of the throughput mode next to the loopback stream: bytes
// appended in 1 MiB writes, without fsync (what an acks=1 produce and the
// broker's write before its group commit do), to a fresh file in dir, the
// filesystem of the first target's data directory; the file is removed
// afterwards. A produce cannot outrun it, since the broker writes every
// byte it receives into the page cache the same way.
func appendReference(dir string, bytes int64) (throughput, error) {
	file, err := os.CreateTemp(dir, "kbench-append-reference-")
	if err != nil {
		return throughput{}, fmt.Errorf("append reference: %w", err)
	}
	defer os.Remove(file.Name())
	defer file.Close()
	chunk := make([]byte, loopbackChunkBytes)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	started := time.Now()
	written := int64(0)
	for written < bytes {
		n, err := file.Write(chunk[:min(int64(len(chunk)), bytes-written)])
		written += int64(n)
		if err != nil {
			return throughput{}, fmt.Errorf("append reference: %w", err)
		}
	}
	return throughput{records: written / loopbackChunkBytes, valueBytes: written, elapsed: time.Since(started)}, nil
}

// selfCPU is the CPU, user and system, this process used so far, or 0
// when the system does not say.
func selfCPU() time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}
