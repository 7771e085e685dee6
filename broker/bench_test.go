package broker

import (
	"context"
	"fmt"
	"io"
	stdnet "net"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkKgoProduce measures produce throughput of one broker over
// loopback TCP with franz-go as the client: records/s and MB/s for 100 B and
// 1 KiB values, 1 and 8 partitions, acks=1 and acks=all, and the p50/p99
// latency of each record from Produce to its acknowledgement. Client and
// broker share the machine, as in the peer figures of DESIGN.md.
func BenchmarkKgoProduce(b *testing.B) {
	for _, valueBytes := range []int{100, 1024} {
		for _, partitions := range []int32{1, 8} {
			for _, acks := range []kgo.Acks{kgo.LeaderAck(), kgo.AllISRAcks()} {
				name := fmt.Sprintf("value=%dB/partitions=%d/acks=%s", valueBytes, partitions, acksName(acks))
				b.Run(name, func(b *testing.B) { benchmarkProduce(b, valueBytes, partitions, acks) })
			}
		}
	}
}

func acksName(acks kgo.Acks) string {
	if acks == kgo.AllISRAcks() {
		return "all"
	}
	return "1"
}

func benchmarkProduce(b *testing.B, valueBytes int, partitions int32, acks kgo.Acks) {
	r := startNode(&testing.T{}, b.TempDir(), func(c *Config) { c.NumPartitions = partitions })
	defer r.stop()
	opts := []kgo.Opt{
		kgo.SeedBrokers(r.addr), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("bench"),
		kgo.RequiredAcks(acks), kgo.ProducerLinger(0), kgo.ProducerBatchMaxBytes(1 << 20),
		kgo.MaxBufferedRecords(1 << 16),
	}
	if acks != kgo.AllISRAcks() {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("warm-up")}).FirstErr(); err != nil {
		b.Fatal(err)
	}
	value := make([]byte, valueBytes)
	latencies := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
	b.SetBytes(int64(valueBytes))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		wg.Add(1)
		start := time.Now()
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			latencies[i] = time.Since(start)
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	b.StopTimer()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	reportThroughputAndLatency(b, latencies)
}

// reportThroughputAndLatency reports records/s over the timed part of the
// benchmark and the p50 and p99 of latencies (sorted in place).
func reportThroughputAndLatency(b *testing.B, latencies []time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkKgoConsume measures fetch throughput: a topic is filled first,
// then a kgo consumer reads it from the start.
func BenchmarkKgoConsume(b *testing.B) {
	for _, valueBytes := range []int{100, 1024} {
		for _, partitions := range []int32{1, 8} {
			name := fmt.Sprintf("value=%dB/partitions=%d", valueBytes, partitions)
			b.Run(name, func(b *testing.B) { benchmarkConsume(b, valueBytes, partitions) })
		}
	}
}

func benchmarkConsume(b *testing.B, valueBytes int, partitions int32) {
	r := startNode(&testing.T{}, b.TempDir(), func(c *Config) { c.NumPartitions = partitions })
	defer r.stop()
	producer, err := kgo.NewClient(kgo.SeedBrokers(r.addr), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("bench"),
		kgo.ProducerLinger(0), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(1<<16))
	if err != nil {
		b.Fatal(err)
	}
	defer producer.Close()
	ctx := context.Background()
	value := make([]byte, valueBytes)
	var wg sync.WaitGroup
	for range b.N {
		wg.Add(1)
		producer.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				panic(err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	consumer, err := kgo.NewClient(kgo.SeedBrokers(r.addr), kgo.ConsumeTopics("bench"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(16<<20))
	if err != nil {
		b.Fatal(err)
	}
	defer consumer.Close()
	b.SetBytes(int64(valueBytes))
	b.ResetTimer()
	for got := 0; got < b.N; {
		fetches := consumer.PollFetches(ctx)
		if err := fetches.Err(); err != nil {
			b.Fatal(err)
		}
		got += fetches.NumRecords()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkKgoProduceLatency measures the latency of one acks=all record at
// a time (below saturation): each ProduceSync waits for its
// acknowledgement before the next record is sent. The modes: caching (no
// fsync before the answer), durable (the default: the group commit's fsync
// runs off the loop before the answer) and flush per message (an inline
// fsync in the append).
func BenchmarkKgoProduceLatency(b *testing.B) {
	modes := []struct {
		name      string
		configure func(*Config)
	}{
		{"mode=caching", func(c *Config) { c.WriteCaching = true }},
		{"mode=durable", nil},
		{"mode=flush-per-message", func(c *Config) { c.FlushIntervalMessages = 1 }},
	}
	for _, mode := range modes {
		b.Run(mode.name, func(b *testing.B) {
			r := startNode(&testing.T{}, b.TempDir(), mode.configure)
			defer r.stop()
			cl, err := kgo.NewClient(kgo.SeedBrokers(r.addr), kgo.AllowAutoTopicCreation(),
				kgo.DefaultProduceTopic("latency"), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			ctx := context.Background()
			value := make([]byte, 1024)
			latencies := make([]time.Duration, b.N)
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
					b.Fatal(err)
				}
				latencies[i] = time.Since(start)
			}
			b.StopTimer()
			sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
			b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkLoopbackTCP is the physical limit the broker benchmarks are
// compared with: one TCP stream over 127.0.0.1 carrying 1 MiB writes,
// measured in the same run.
func BenchmarkLoopbackTCP(b *testing.B) {
	ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	done := make(chan int64)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- 0
			return
		}
		n, _ := io.Copy(io.Discard, conn)
		done <- n
	}()
	conn, err := stdnet.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for range b.N {
		if _, err := conn.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	conn.Close()
	<-done
}
