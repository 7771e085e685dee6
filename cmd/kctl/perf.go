package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Bounds of the perf commands' flags.
const (
	perfRecordsMax     = 1_000_000_000
	perfRecordBytesMax = lineBytesMax
	perfPayloadsMax    = 1024 // distinct random payloads cycled through
	perfProgressEvery  = 5 * time.Second
)

// perfCommands are the subcommands of "kctl perf".
var perfCommands = []command{
	{
		name:     "produce",
		synopsis: "TOPIC [-n records] [-s record-bytes] [--acks all|1|0] [-z codec] [--partitions N] [--linger d] [--batch-bytes N]",
		summary:  "Produce records as fast as possible and report throughput and latency.",
		description: "Sends -n records of -s bytes (random capital letters, as kafka-producer-perf-test.sh sends)\n" +
			"and prints records/s, MB/s (MB = 2^20 bytes) and the latency from handing a record to the\n" +
			"client to its acknowledgement: average, p50, p99, p99.9 and max (percentiles within 1%).\n" +
			"A missing topic is created with --partitions partitions. On a terminal a progress line\n" +
			"appears every 5 seconds. Point it at any Kafka-compatible broker to compare brokers.",
		examples: []string{
			"kctl perf produce bench -n 1000000 -s 100 --partitions 6",
			"kctl perf produce bench -n 1000000 -s 1024 --acks 1 -z lz4 --linger 5ms",
		},
		flags: perfProduceFlags,
	},
	{
		name:     "consume",
		synopsis: "TOPIC [-n records] [-g group]",
		summary:  "Consume records as fast as possible and report throughput.",
		description: "Reads the topic from its start until -n records (default: every record up to the end offsets\n" +
			"at startup) and prints records/s and MB/s of keys and values, as kafka-consumer-perf-test.sh\n" +
			"does. -g consumes in a group (nothing is committed). On a terminal a progress line appears\n" +
			"every 5 seconds.",
		examples: []string{
			"kctl perf consume bench                 # everything produced so far",
			"kctl perf consume bench -n 1000000 -g perf",
		},
		flags: perfConsumeFlags,
	},
}

// perfProduceOptions are the parsed flags of "kctl perf produce".
type perfProduceOptions struct {
	topic       string
	records     int
	recordBytes int
	acks        kgo.Acks
	idempotent  bool
	codec       kgo.CompressionCodec
	partitions  int32
	linger      time.Duration
	batchBytes  int32
}

func perfProduceFlags(fs *flagSet) func(*invocation, []string) error {
	records := fs.fs.Int("n", 100_000, "number of records to send")
	recordBytes := fs.fs.Int("s", 100, "bytes per record value")
	acksName := fs.fs.String("acks", "all", "acknowledgement: all (idempotent), 1 or 0")
	codecName := fs.fs.String("z", "none", "compression codec: none, gzip, snappy, lz4 or zstd")
	partitions := fs.fs.Int("partitions", -1, "partitions of the topic if it must be created (-1: the broker's default)")
	linger := fs.fs.Duration("linger", 0, "how long a batch waits for more records (linger.ms)")
	batchBytes := fs.fs.Int("batch-bytes", 1<<20, "largest batch in bytes (batch.size / max.message.bytes)")
	return func(inv *invocation, args []string) error {
		if len(args) != 1 {
			return fs.usageErrorf("perf produce takes exactly one topic (got %d arguments)", len(args))
		}
		opts := perfProduceOptions{topic: args[0], records: *records, recordBytes: *recordBytes,
			partitions: int32(*partitions), linger: *linger, batchBytes: int32(*batchBytes)}
		var err error
		switch {
		case *records <= 0 || *records > perfRecordsMax:
			return fs.usageErrorf("-n %d: give a record count from 1 to %d", *records, perfRecordsMax)
		case *recordBytes < 0 || *recordBytes > perfRecordBytesMax:
			return fs.usageErrorf("-s %d: give a record size from 0 to %d bytes", *recordBytes, perfRecordBytesMax)
		case *partitions == 0 || *partitions < -1 || *partitions > 1<<31-1:
			return fs.usageErrorf("--partitions %d: give a positive count or -1", *partitions)
		case *linger < 0:
			return fs.usageErrorf("--linger %v must not be negative", *linger)
		case *batchBytes < 1024 || *batchBytes > 1<<30:
			return fs.usageErrorf("--batch-bytes %d: give a size from 1024 to %d", *batchBytes, 1<<30)
		}
		if opts.codec, err = parseCodec(*codecName); err != nil {
			return fs.usageErrorf("-z: %v", err)
		}
		if opts.acks, opts.idempotent, err = parseAcks(*acksName); err != nil {
			return fs.usageErrorf("--acks: %v", err)
		}
		return perfProduce(inv, opts)
	}
}

// latencyHistogram counts latencies in buckets 1% wide (log-linear), so
// that percentiles of a billion records fit in a few kilobytes.
type latencyHistogram struct {
	mu      sync.Mutex
	buckets []int64 // by bucketOf(microseconds)
	count   int64
	sumUs   int64
	maxUs   int64
}

// histogramGrowth is the ratio of neighbouring bucket bounds.
const histogramGrowth = 1.01

func bucketOf(us int64) int {
	if us < 1 {
		return 0
	}
	return int(math.Log(float64(us))/math.Log(histogramGrowth)) + 1
}

// bucketUpperUs is the largest latency bucket b holds, in microseconds.
func bucketUpperUs(b int) int64 {
	if b == 0 {
		return 0
	}
	return int64(math.Ceil(math.Pow(histogramGrowth, float64(b))))
}

func (h *latencyHistogram) add(d time.Duration) {
	us := d.Microseconds()
	b := bucketOf(us)
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(h.buckets) <= b {
		h.buckets = append(h.buckets, 0)
	}
	h.buckets[b]++
	h.count++
	h.sumUs += us
	h.maxUs = max(h.maxUs, us)
}

// percentileMs is the latency below which q of the records fall, in
// milliseconds, bounded by the exact maximum.
func (h *latencyHistogram) percentileMs(q float64) float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	rank := int64(math.Ceil(q * float64(h.count)))
	var seen int64
	for b, n := range h.buckets {
		seen += n
		if seen >= rank && n > 0 {
			return float64(min(bucketUpperUs(b), h.maxUs)) / 1000
		}
	}
	return float64(h.maxUs) / 1000
}

// perfPayloads are random capital letters, as Kafka's producer perf test
// sends, in a few distinct records so that compression has work to do.
func perfPayloads(recordBytes int) [][]byte {
	random := rand.New(rand.NewPCG(1, 2))
	payloads := make([][]byte, perfPayloadsMax)
	for i := range payloads {
		p := make([]byte, recordBytes)
		for j := range p {
			p[j] = byte('A' + random.IntN(26))
		}
		payloads[i] = p
	}
	return payloads
}

func perfProduce(inv *invocation, opts perfProduceOptions) error {
	if err := ensurePerfTopic(inv, opts.topic, opts.partitions); err != nil {
		return err
	}
	seen := &produceErrorSeen{}
	kopts := produceClientOptions(inv, opts.topic, opts.codec, opts.acks, opts.idempotent, seen)
	kopts = append(kopts, kgo.ProducerLinger(opts.linger), kgo.ProducerBatchMaxBytes(opts.batchBytes))
	client, err := inv.connect(kopts...)
	if err != nil {
		return err
	}
	defer client.Close()

	payloads := perfPayloads(opts.recordBytes)
	latencies := &latencyHistogram{}
	failures := newFailureSummary()
	var window perfWindow
	started := time.Now()
	status := startProgress(inv, perfProgressEvery, func() string { return window.line(latencies) })
	for i := range opts.records {
		sent := time.Now()
		record := &kgo.Record{Value: payloads[i%len(payloads)]}
		number := i + 1
		client.Produce(inv.ctx, record, func(_ *kgo.Record, err error) {
			if err != nil {
				failures.add(number, deliveryCause(err, seen, inv.global.timeout))
				return
			}
			latencies.add(time.Since(sent))
		})
		if inv.ctx.Err() != nil {
			break
		}
	}
	flushErr := client.Flush(inv.ctx)
	elapsed := time.Since(started)
	status.end()
	failures.print(inv.stderr, "perf produce "+opts.topic, "record")
	printProduceResult(inv, opts, latencies, elapsed)
	switch {
	case flushErr != nil:
		return fmt.Errorf("perf produce interrupted: %w", flushErr)
	case failures.failed() > 0:
		return errReported
	}
	return nil
}

// printProduceResult prints the summary line: records, rates, latencies.
func printProduceResult(inv *invocation, opts perfProduceOptions, latencies *latencyHistogram, elapsed time.Duration) {
	seconds := max(elapsed.Seconds(), 1e-9)
	delivered := latencies.count
	averageMs := 0.0
	if delivered > 0 {
		averageMs = float64(latencies.sumUs) / float64(delivered) / 1000
	}
	fmt.Fprintf(inv.stdout, "%d %s sent, %d bytes each, in %.2f s: %.1f records/s, %.2f MB/s\n",
		delivered, plural(int(delivered), "record"), opts.recordBytes, seconds,
		float64(delivered)/seconds, float64(delivered)*float64(opts.recordBytes)/seconds/(1<<20))
	fmt.Fprintf(inv.stdout, "latency ms: avg %.2f, p50 %.2f, p99 %.2f, p99.9 %.2f, max %.2f\n",
		averageMs, latencies.percentileMs(0.50), latencies.percentileMs(0.99), latencies.percentileMs(0.999),
		float64(latencies.maxUs)/1000)
}

// perfWindow turns cumulative counts into the rate since the last
// progress line.
type perfWindow struct {
	last      time.Time
	lastCount int64
}

func (w *perfWindow) line(h *latencyHistogram) string {
	h.mu.Lock()
	count, maxUs := h.count, h.maxUs
	h.mu.Unlock()
	now := time.Now()
	rate := 0.0
	if !w.last.IsZero() {
		rate = float64(count-w.lastCount) / now.Sub(w.last).Seconds()
	}
	w.last, w.lastCount = now, count
	return fmt.Sprintf("%d records acknowledged, %.1f records/s now, max latency %.1f ms", count, rate, float64(maxUs)/1000)
}

// ensurePerfTopic creates the topic when it does not exist yet.
func ensurePerfTopic(inv *invocation, topic string, partitions int32) error {
	return inv.withAdmin(func(ctx context.Context, admin *kadm.Client) error {
		created, err := admin.CreateTopic(ctx, partitions, -1, nil, topic)
		if err == nil {
			err = created.Err
		}
		if err == nil || kerrIs(err, kerr.TopicAlreadyExists) {
			return nil
		}
		return requestError("create topic "+topic, err)
	})
}

func kerrIs(err error, target *kerr.Error) bool {
	ke, ok := err.(*kerr.Error)
	return ok && ke == target
}

func perfConsumeFlags(fs *flagSet) func(*invocation, []string) error {
	records := fs.fs.Int("n", 0, "records to read (0: every record up to the end offsets at startup)")
	group := fs.fs.String("g", "", "consume in this group (nothing is committed)")
	return func(inv *invocation, args []string) error {
		if len(args) != 1 {
			return fs.usageErrorf("perf consume takes exactly one topic (got %d arguments)", len(args))
		}
		if *records < 0 || *records > perfRecordsMax {
			return fs.usageErrorf("-n %d: give a record count from 0 to %d", *records, perfRecordsMax)
		}
		return perfConsume(inv, args[0], *records, *group)
	}
}

func perfConsume(inv *invocation, topic string, records int, group string) error {
	if records == 0 {
		total, err := recordsToEnd(inv, topic)
		if err != nil {
			return err
		}
		if records = int(total); records == 0 {
			return fmt.Errorf("perf consume %s: the topic is empty; produce first or give -n", topic)
		}
	}
	kopts := []kgo.Opt{
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(fetchWaitMax),
	}
	if group != "" {
		kopts = append(kopts, kgo.ConsumerGroup(group), kgo.DisableAutoCommit())
	}
	client, err := inv.connect(kopts...)
	if err != nil {
		return err
	}
	defer client.Close()
	var read, readBytes int64
	var mu sync.Mutex
	started := time.Now()
	var firstAt time.Time
	status := startProgress(inv, perfProgressEvery, func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("%d records read, %.2f MB", read, float64(readBytes)/(1<<20))
	})
	defer status.end()
	for read < int64(records) {
		fetches := client.PollRecords(inv.ctx, records-int(read))
		if inv.ctx.Err() != nil || fetches.IsClientClosed() {
			return fmt.Errorf("perf consume interrupted after %d records", read)
		}
		if err := fetchError(fetches); err != nil {
			return err
		}
		if firstAt.IsZero() && fetches.NumRecords() > 0 {
			firstAt = time.Now()
		}
		mu.Lock()
		fetches.EachRecord(func(r *kgo.Record) {
			read++
			readBytes += int64(len(r.Key) + len(r.Value))
		})
		mu.Unlock()
	}
	status.end()
	printConsumeResult(inv, read, readBytes, firstAt.Sub(started), time.Since(firstAt))
	return nil
}

// printConsumeResult prints the summary line. As Kafka's consumer perf test
// separates the rebalance time from the fetch time, the rates count from
// the first record; the wait for it (connecting, joining a group) is shown
// apart.
func printConsumeResult(inv *invocation, read, readBytes int64, startup, fetching time.Duration) {
	seconds := max(fetching.Seconds(), 1e-9)
	fmt.Fprintf(inv.stdout, "%d %s read, %d bytes, in %.2f s after %.2f s to the first record: %.1f records/s, %.2f MB/s\n",
		read, plural(int(read), "record"), readBytes, fetching.Seconds(), startup.Seconds(),
		float64(read)/seconds, float64(readBytes)/seconds/(1<<20))
}

// recordsToEnd is the number of offsets between each partition's start
// and end, summed: what "read everything" means at startup.
func recordsToEnd(inv *invocation, topic string) (int64, error) {
	var total int64
	err := inv.withAdmin(func(ctx context.Context, admin *kadm.Client) error {
		starts, err := admin.ListStartOffsets(ctx, topic)
		if err != nil {
			return requestError("list start offsets of "+topic, err)
		}
		ends, err := admin.ListEndOffsets(ctx, topic)
		if err != nil {
			return requestError("list end offsets of "+topic, err)
		}
		if _, ok := ends[topic]; !ok {
			return fmt.Errorf("perf consume %s: %s", topic, kafkaError(kerr.UnknownTopicOrPartition, ""))
		}
		var failure error
		ends.Each(func(end kadm.ListedOffset) {
			start, ok := starts.Lookup(end.Topic, end.Partition)
			switch {
			case end.Err != nil:
				failure = fmt.Errorf("perf consume %s partition %d: %s", topic, end.Partition, kafkaError(end.Err, ""))
			case ok && start.Err == nil:
				total += end.Offset - start.Offset
			}
		})
		return failure
	})
	return total, err
}
