package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	stdnet "net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Client settings shared by every target, so that the targets differ
// only in the server. The producer's are kctl perf's; the consumer's fetch
// sizes are flags (kgo's defaults unless set). Batches are not
// compressed, so that the bytes on the wire are the records' bytes and
// the loopback stream is a fair reference.
const (
	producerBatchBytesMax = 1 << 20
	producerBufferedMax   = 1 << 16
	// payloadsMax is how many distinct random values are cycled through.
	payloadsMax        = 1024
	loopbackChunkBytes = 1 << 20
	loopbackBytes      = 4 << 30
	// latencyStampBytes is the record's index in its latency run, at the
	// start of every latency record's value.
	latencyStampBytes = 8
)

// throughput is one produce or consume measurement.
type throughput struct {
	records, valueBytes int64
	elapsed             time.Duration
}

func (t throughput) recordsPerSecond() float64 { return float64(t.records) / t.elapsed.Seconds() }
func (t throughput) mbPerSecond() float64 {
	return float64(t.valueBytes) / float64(1<<20) / t.elapsed.Seconds()
}

// createTopic creates topic with partitions on s, with s's replication
// factor and topic settings, and waits until a replicated topic's every
// partition has a leader and a full ISR.
func createTopic(ctx context.Context, s *server, topic string, partitions int32) error {
	client, err := kgo.NewClient(kgo.SeedBrokers(s.addr))
	if err != nil {
		return err
	}
	defer client.Close()
	resp, err := kadm.NewClient(client).CreateTopic(ctx, partitions, s.replicas, s.topicConfigs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	if s.replicas > 1 {
		return awaitTopicReplicated(ctx, s, topic, partitions)
	}
	return nil
}

// deleteTopic deletes topic, so that a long run holds one case's data at
// a time (kfake keeps every record in memory).
func deleteTopic(ctx context.Context, addr, topic string) error {
	client, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer client.Close()
	resp, err := kadm.NewClient(client).DeleteTopic(ctx, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("delete topic %s: %w", topic, err)
	}
	return nil
}

// produceAll sends records values of valueBytes to topic (acks=all,
// idempotent: kgo's default) and times it from the first record handed to
// the client to the last acknowledgement.
func produceAll(ctx context.Context, addr, topic string, records, valueBytes int) (throughput, error) {
	client, err := newProducer(addr, topic)
	if err != nil {
		return throughput{}, err
	}
	defer client.Close()
	values := payloads(valueBytes)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	started := time.Now()
	for i := range records {
		wg.Add(1)
		client.Produce(ctx, &kgo.Record{Value: values[i%len(values)]}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				firstErr = cmpOr(firstErr, err)
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	elapsed := time.Since(started)
	if firstErr != nil {
		return throughput{}, fmt.Errorf("produce: %w", firstErr)
	}
	return throughput{records: int64(records), valueBytes: int64(records) * int64(valueBytes), elapsed: elapsed}, nil
}

// fetchSizes are the consumer's fetch.max.bytes and
// max.partition.fetch.bytes.
type fetchSizes struct {
	bytesMax, partitionBytesMax int32
}

// newConsumer reads topic from its start, without a group.
func newConsumer(addr, topic string, fetch fetchSizes) (*kgo.Client, error) {
	return kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(fetch.bytesMax), kgo.FetchMaxPartitionBytes(fetch.partitionBytesMax))
}

// newProducer is the producer of every test: acks=all and idempotent
// (kgo's default), no compression, batches up to 1 MiB.
func newProducer(addr, topic string) (*kgo.Client, error) {
	return kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(producerBatchBytesMax), kgo.MaxBufferedRecords(producerBufferedMax))
}

// payloads are random capital letters, as Kafka's producer perf test
// sends, in payloadsMax distinct values of valueBytes (at least the
// latency stamp's size).
func payloads(valueBytes int) [][]byte {
	random := rand.New(rand.NewPCG(1, 2))
	values := make([][]byte, payloadsMax)
	for i := range values {
		value := make([]byte, max(valueBytes, latencyStampBytes))
		for j := range value {
			value[j] = byte('A' + random.IntN(26))
		}
		values[i] = value
	}
	return values
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// consumeAll reads topic from its start until records records arrived,
// timed from the first poll.
func consumeAll(ctx context.Context, addr, topic string, records int, fetch fetchSizes) (throughput, error) {
	client, err := newConsumer(addr, topic, fetch)
	if err != nil {
		return throughput{}, err
	}
	defer client.Close()
	var got, valueBytes int64
	started := time.Now()
	for got < int64(records) {
		fetches := client.PollFetches(ctx)
		if err := fetches.Err(); err != nil {
			return throughput{}, fmt.Errorf("consume: %w", err)
		}
		fetches.EachRecord(func(r *kgo.Record) { valueBytes += int64(len(r.Value)) })
		got += int64(fetches.NumRecords())
	}
	return throughput{records: got, valueBytes: valueBytes, elapsed: time.Since(started)}, nil
}

// latencies are durations, sorted, for percentiles.
type latencies []time.Duration

func (l latencies) percentile(q float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	rank := int(float64(len(l))*q+0.999999) - 1
	return l[min(max(rank, 0), len(l)-1)]
}

// loopback measures one TCP stream over 127.0.0.1: 1 MiB writes read by
// another goroutine, the physical reference of the run.
func loopback() (throughput, error) {
	ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return throughput{}, err
	}
	defer ln.Close()
	received := make(chan int64, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			received <- 0
			return
		}
		defer conn.Close()
		n, _ := io.Copy(io.Discard, conn)
		received <- n
	}()
	conn, err := stdnet.Dial("tcp", ln.Addr().String())
	if err != nil {
		return throughput{}, err
	}
	chunk := make([]byte, loopbackChunkBytes)
	started := time.Now()
	for written := 0; written < loopbackBytes; written += len(chunk) {
		if _, err := conn.Write(chunk); err != nil {
			conn.Close()
			return throughput{}, err
		}
	}
	conn.Close()
	n := <-received
	return throughput{records: n / loopbackChunkBytes, valueBytes: n, elapsed: time.Since(started)}, nil
}
