package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The latency test is open loop: record i is due at start + i/rate,
// whenever the records before it were sent or answered, and its latency
// counts from that scheduled time. A closed loop (send, wait, send again)
// or a paced loop that stamps the time it actually sends hides the
// queueing that a stall causes, because the records that would have been
// sent during the stall are not sent at all (coordinated omission); here
// they are due all the same, and wait.
//
// Every record's value starts with its index i, which leads to its
// scheduled time and to what the run noted about it: when the producer
// handed it to the client, when its Produce request was written and its
// response read and when the first Fetch response holding it was read
// (the wire tap, by partition and offset), and when the consumer's poll
// returned it.

// latencyRecordsMax bounds the records of one latency run: its arrays and
// the tap's take about 32 bytes per record, and the report another 48
// while it is computed, plus the records themselves in flight.
const latencyRecordsMax = 10_000_000

// latencyPollTimeout bounds one poll of the latency consumer, so that it
// notices when the producer is done.
const latencyPollTimeout = 100 * time.Millisecond

// latencySleepMin is the shortest sleep of the paced producer: closer
// deadlines are met by sending at once.
const latencySleepMin = 50 * time.Microsecond

// latencyConfig is how one latency run produces.
type latencyConfig struct {
	valueBytes int
	rate       float64 // records per second
	duration   time.Duration
	// linger is the producer's ProducerLinger; kgo's default is 10 ms.
	linger time.Duration
	fetch  fetchSizes
}

// latencyRun holds what one run noted, per record index; times are in
// microseconds since start, 0 when not seen.
type latencyRun struct {
	start time.Time
	rate  float64
	// tapLag is how many microseconds the tap's clock started before
	// start (it starts before the clients connect).
	tapLag    int32
	handed    []int32
	polled    []int32
	partition []int32
	offset    []int64
	tap       *wireTap
	// polledCount counts records the consumer received (each once).
	polledCount int
}

// scheduled is record i's due time in microseconds since the start.
func (r *latencyRun) scheduled(i int) float64 { return float64(i) * 1e6 / r.rate }

// scheduledDuration is record i's due time as an offset from the start.
func (r *latencyRun) scheduledDuration(i int) time.Duration {
	return time.Duration(float64(i) * 1e9 / r.rate)
}

// measureOpenLoop runs one open-loop latency test on a fresh topic and
// returns its stage breakdown.
func measureOpenLoop(ctx context.Context, addr, topic string, cfg latencyConfig) (stageReport, error) {
	records := int(cfg.rate * cfg.duration.Seconds())
	if records < 1 || records > latencyRecordsMax {
		return stageReport{}, fmt.Errorf("latency run of %d records (rate times duration) is outside [1, %d]", records, latencyRecordsMax)
	}
	start := time.Now()
	run := &latencyRun{rate: cfg.rate, tap: newWireTap(start),
		handed: make([]int32, records), polled: make([]int32, records),
		partition: make([]int32, records), offset: make([]int64, records)}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(cfg.fetch.bytesMax), kgo.FetchMaxPartitionBytes(cfg.fetch.partitionBytesMax), run.tap.option())
	if err != nil {
		return stageReport{}, err
	}
	defer consumer.Close()
	producer, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(cfg.linger),
		kgo.ProducerBatchMaxBytes(producerBatchBytesMax), kgo.MaxBufferedRecords(producerBufferedMax), run.tap.option())
	if err != nil {
		return stageReport{}, err
	}
	defer producer.Close()
	// Both clients connect and learn the metadata before the clock
	// starts, so that the first records do not pay for it.
	if err := producer.Ping(ctx); err != nil {
		return stageReport{}, err
	}
	if err := consumer.Ping(ctx); err != nil {
		return stageReport{}, err
	}
	run.start = time.Now()
	run.tapLag = int32(run.start.Sub(run.tap.start).Microseconds())
	produceErr := make(chan error, 1)
	go func() { produceErr <- run.produce(ctx, producer, cfg.valueBytes) }()
	if err := run.consume(ctx, consumer, produceErr); err != nil {
		return stageReport{}, err
	}
	return run.report(), nil
}

// produce hands every record to the client at its scheduled time (or at
// once when late), then waits for every acknowledgement.
func (r *latencyRun) produce(ctx context.Context, client *kgo.Client, valueBytes int) error {
	values := payloads(valueBytes)
	var mu sync.Mutex
	var firstErr error
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			firstErr = cmpOr(firstErr, err)
			mu.Unlock()
		}
	}
	// Values are cut from slabs, so that the producer does not allocate
	// once per record.
	var slab []byte
	for i := range len(r.handed) {
		if wait := r.scheduledDuration(i) - time.Since(r.start); wait >= latencySleepMin {
			time.Sleep(wait)
		}
		if len(slab) < len(values[0]) {
			slab = make([]byte, len(values[0])*1024)
		}
		value := slab[:len(values[0]):len(values[0])]
		slab = slab[len(value):]
		copy(value, values[i%len(values)])
		binary.BigEndian.PutUint64(value, uint64(i))
		r.handed[i] = r.since(time.Now())
		client.Produce(ctx, &kgo.Record{Value: value}, promise)
	}
	if err := client.Flush(ctx); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	return firstErr
}

// consume polls until every record arrived, noting when each did.
func (r *latencyRun) consume(ctx context.Context, client *kgo.Client, produceErr <-chan error) error {
	produced := false
	for r.polledCount < len(r.polled) {
		select {
		case err := <-produceErr:
			if err != nil {
				return fmt.Errorf("produce: %w", err)
			}
			produced = true
		default:
		}
		pollCtx, cancel := context.WithTimeout(ctx, latencyPollTimeout)
		fetches := client.PollFetches(pollCtx)
		cancel()
		now := r.since(time.Now())
		if err := fetches.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("consume: %w", err)
		}
		var bad error
		fetches.EachRecord(func(record *kgo.Record) {
			i := binary.BigEndian.Uint64(record.Value)
			if i >= uint64(len(r.polled)) || r.polled[i] != 0 {
				bad = fmt.Errorf("consume: record index %d unknown or seen twice", i)
				return
			}
			r.polled[i], r.partition[i], r.offset[i] = now, record.Partition, record.Offset
			r.polledCount++
		})
		if bad != nil {
			return bad
		}
		if ctx.Err() != nil {
			return fmt.Errorf("consume: %w (%d of %d records arrived; produce done: %v)", ctx.Err(), r.polledCount, len(r.polled), produced)
		}
	}
	return nil
}

// since is the time from the run's start to at, in microseconds, at least
// 1 so that 0 keeps meaning "not seen".
func (r *latencyRun) since(at time.Time) int32 {
	return int32(max(at.Sub(r.start).Microseconds(), 1))
}

// fromTap converts a tap mark to the run's clock (0 stays "not seen").
func (r *latencyRun) fromTap(mark int32) int32 {
	if mark == 0 {
		return 0
	}
	return max(mark-r.tapLag, 1)
}

// Stages of a record's trip, each from the end of the one before.
const (
	stagePace     = iota // scheduled -> handed to the client (kbench's own lag)
	stageSend            // handed -> its Produce request written (linger, batching, requests in flight)
	stageAnswer          // request written -> Produce response read (append, fsync, answer)
	stageExpose          // request written -> first Fetch response holding it read
	stageDeliver         // Fetch response read -> consumer's poll returned it
	stageEndToEnd        // scheduled -> consumer's poll returned it
	stageCount
)

// stageNames head the stage columns.
var stageNames = [stageCount]string{"sched→handed", "handed→written", "written→acked", "written→fetched", "fetched→polled", "end to end"}

// stageReport summarizes a run.
type stageReport struct {
	records int
	// tapped is false when the wire tap lost track; then only
	// sched→handed and the end-to-end latency are known.
	tapped    bool
	tapError  string
	quantiles [stageCount][3]time.Duration // p50, p99, p99.9
	// tail is the median of every stage over the records whose end to
	// end latency is at or above its p99: what the p99 is made of.
	tail [stageCount]time.Duration
}

// reportQuantiles are the percentiles the report gives.
var reportQuantiles = [3]float64{0.50, 0.99, 0.999}

// report computes every stage of every record and summarizes them.
func (r *latencyRun) report() stageReport {
	rep := stageReport{records: len(r.polled)}
	r.tap.mu.Lock()
	defer r.tap.mu.Unlock()
	rep.tapped = r.tap.failure == nil
	if r.tap.failure != nil {
		rep.tapError = r.tap.failure.Error()
	}
	stages := make([][stageCount]time.Duration, len(r.polled))
	for i := range r.polled {
		stages[i] = r.stagesOf(i)
	}
	var column latencies
	for s := range stageCount {
		column = column[:0]
		for i := range stages {
			column = append(column, stages[i][s])
		}
		slices.Sort(column)
		for q, quantile := range reportQuantiles {
			rep.quantiles[s][q] = column.percentile(quantile)
		}
	}
	threshold := rep.quantiles[stageEndToEnd][1]
	for s := range stageCount {
		column = column[:0]
		for i := range stages {
			if stages[i][stageEndToEnd] >= threshold {
				column = append(column, stages[i][s])
			}
		}
		slices.Sort(column)
		rep.tail[s] = column.percentile(0.5)
	}
	return rep
}

// stagesOf returns the stages of record i; a stage whose end was not seen
// (the tap failed) is 0.
func (r *latencyRun) stagesOf(i int) [stageCount]time.Duration {
	scheduled := r.scheduled(i)
	partition, offset := r.partition[i], r.offset[i]
	written := r.fromTap(r.tap.written.at(partition, offset))
	fetched := r.fromTap(r.tap.fetched.at(partition, offset))
	answered := r.fromTap(r.tap.answered.at(partition, offset))
	micros := func(from float64, to int32) time.Duration {
		if to == 0 {
			return 0
		}
		return time.Duration((float64(to) - from) * float64(time.Microsecond))
	}
	var s [stageCount]time.Duration
	s[stagePace] = micros(scheduled, r.handed[i])
	s[stageEndToEnd] = micros(scheduled, r.polled[i])
	if written != 0 {
		s[stageSend] = micros(float64(r.handed[i]), written)
		s[stageAnswer] = micros(float64(written), answered)
		s[stageExpose] = micros(float64(written), fetched)
	}
	if fetched != 0 {
		s[stageDeliver] = micros(float64(fetched), r.polled[i])
	}
	return s
}
