package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// lineBytesMax bounds one input line (one record), matching the broker's
// default message.max.bytes; a longer line is an error, not a split record.
const lineBytesMax = 1 << 20

// bufferedRecordsMax bounds the records waiting for acknowledgement, so that
// a large input streams through in bounded memory.
const bufferedRecordsMax = 10_000

// produceCommand is "kctl produce".
var produceCommand = command{
	name:     "produce",
	synopsis: "TOPIC [-k key-separator] [-z codec] [--acks all|1|0] [-p partition]",
	summary:  "Produce one record per line of stdin.",
	description: "Each line of stdin becomes one record; with -k, the text before the first separator is the\n" +
		"key. At the end the count of records produced goes to stderr. Failed records are summarized\n" +
		"by cause: a count, the Kafka error and the broker's message, with the first failed line.\n" +
		"On a terminal, a progress line is updated every second.",
	examples: []string{
		"seq 1000 | kctl produce orders                   # 1000 records without keys",
		"printf 'k1=v1\\nk2=v2\\n' | kctl produce orders -k =  # keyed records",
		"kctl produce orders -z zstd --acks 1 < events.txt",
	},
	flags: produceFlags,
}

// produceOptions are the parsed flags of "kctl produce".
type produceOptions struct {
	topic      string
	separator  string
	codec      kgo.CompressionCodec
	acks       kgo.Acks
	idempotent bool
	partition  int32 // -1: the client's partitioner (murmur2 on the key)
}

func produceFlags(fs *flagSet) func(*invocation, []string) error {
	separator := fs.fs.String("k", "", "key separator: each line is KEY<sep>VALUE (no key when empty)")
	codecName := fs.fs.String("z", "none", "compression codec: none, gzip, snappy, lz4 or zstd")
	acksName := fs.fs.String("acks", "all", "acknowledgement: all (idempotent), 1 or 0")
	partition := fs.fs.Int("p", -1, "partition to write to (-1: by key hash, or sticky without a key)")
	return func(inv *invocation, args []string) error {
		if len(args) != 1 {
			return fs.usageErrorf("produce takes exactly one topic (got %d arguments)", len(args))
		}
		opts := produceOptions{topic: args[0], separator: *separator, partition: int32(*partition)}
		var err error
		if opts.codec, err = parseCodec(*codecName); err != nil {
			return fs.usageErrorf("-z: %v", err)
		}
		if opts.acks, opts.idempotent, err = parseAcks(*acksName); err != nil {
			return fs.usageErrorf("--acks: %v", err)
		}
		if *partition < -1 || *partition > 1<<31-1 {
			return fs.usageErrorf("-p %d: give a partition number or -1", *partition)
		}
		return produce(inv, opts)
	}
}

func parseCodec(name string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(name) {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("unknown codec %q (want none, gzip, snappy, lz4 or zstd)", name)
}

// parseAcks maps --acks to kgo's setting; only acks=all can be idempotent.
func parseAcks(name string) (kgo.Acks, bool, error) {
	switch strings.ToLower(name) {
	case "all", "-1":
		return kgo.AllISRAcks(), true, nil
	case "1", "leader":
		return kgo.LeaderAck(), false, nil
	case "0", "none":
		return kgo.NoAck(), false, nil
	}
	return kgo.Acks{}, false, fmt.Errorf("unknown acks %q (want all, 1 or 0)", name)
}

// produceTally counts outcomes; kgo runs the promises on its own goroutines.
type produceTally struct {
	succeeded atomic.Int64
	failures  *failureSummary
	seen      *produceErrorSeen // the broker's last Produce error, for timeouts
}

// produceClientOptions are the kgo options of a producer on the global
// options; the dialer reads the broker's Produce errors into seen.
func produceClientOptions(inv *invocation, topic string, codec kgo.CompressionCodec, acks kgo.Acks, idempotent bool, seen *produceErrorSeen) []kgo.Opt {
	kopts := []kgo.Opt{
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(codec),
		kgo.RequiredAcks(acks),
		kgo.AllowAutoTopicCreation(), // the broker's auto.create.topics.enable decides
		kgo.MaxBufferedRecords(bufferedRecordsMax),
		kgo.RecordDeliveryTimeout(inv.global.timeout),
		kgo.Dialer(seen.dialer(inv.global.timeout)),
	}
	if !idempotent {
		kopts = append(kopts, kgo.DisableIdempotentWrite())
	}
	return kopts
}

func produce(inv *invocation, opts produceOptions) error {
	tally := &produceTally{failures: newFailureSummary(), seen: &produceErrorSeen{}}
	kopts := produceClientOptions(inv, opts.topic, opts.codec, opts.acks, opts.idempotent, tally.seen)
	if opts.partition >= 0 {
		kopts = append(kopts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	client, err := inv.connect(kopts...)
	if err != nil {
		return err
	}
	defer client.Close()

	started := time.Now()
	status := startProgress(inv, time.Second, func() string {
		return fmt.Sprintf("produced %d, failed %d, %s", tally.succeeded.Load(), tally.failures.failed(), time.Since(started).Round(time.Second))
	})
	readErr := produceLines(inv, client, opts, tally)
	flushErr := client.Flush(inv.ctx)
	status.end()
	succeeded, failed := int(tally.succeeded.Load()), tally.failures.failed()
	tally.failures.print(inv.stderr, "produce "+opts.topic, "line")
	fmt.Fprintf(inv.stderr, "produced %d %s to %s", succeeded, plural(succeeded, "record"), opts.topic)
	if failed > 0 {
		fmt.Fprintf(inv.stderr, " (%d failed)", failed)
	}
	fmt.Fprintln(inv.stderr)
	switch {
	case readErr != nil:
		return readErr
	case flushErr != nil:
		return fmt.Errorf("produce interrupted: %w", flushErr)
	case failed > 0:
		return errReported
	}
	return nil
}

// produceLines reads stdin and hands one record per line to the client.
func produceLines(inv *invocation, client *kgo.Client, opts produceOptions, tally *produceTally) error {
	scanner := bufio.NewScanner(inv.stdin)
	scanner.Buffer(make([]byte, 0, 64<<10), lineBytesMax)
	line := 0
	for scanner.Scan() {
		line++
		record := lineRecord(scanner.Bytes(), opts)
		lineNumber := line
		client.Produce(inv.ctx, record, func(_ *kgo.Record, err error) {
			if err != nil {
				tally.failures.add(lineNumber, deliveryCause(err, tally.seen, inv.global.timeout))
				return
			}
			tally.succeeded.Add(1)
		})
		if inv.ctx.Err() != nil {
			return fmt.Errorf("produce interrupted after line %d", line)
		}
	}
	if err := scanner.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("stdin line %d is longer than %d bytes", line+1, lineBytesMax)
		}
		return fmt.Errorf("reading stdin after line %d: %w", line, err)
	}
	return nil
}

// lineRecord builds the record for one input line. The scanner reuses its
// buffer, so key and value are copied.
func lineRecord(text []byte, opts produceOptions) *kgo.Record {
	text = bytes.TrimSuffix(text, []byte("\r"))
	record := &kgo.Record{Partition: opts.partition}
	if opts.separator != "" {
		if key, value, ok := bytes.Cut(text, []byte(opts.separator)); ok {
			record.Key = bytes.Clone(key)
			text = value
		}
	}
	record.Value = bytes.Clone(text)
	if record.Value == nil {
		record.Value = []byte{} // an empty line is an empty value, not a null one
	}
	return record
}
