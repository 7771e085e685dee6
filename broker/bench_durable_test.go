package broker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkKgoDurableProduce measures what durability costs: 4 franz-go
// producers (linger 5 ms) write 1 KiB records over loopback TCP to a topic
// of 1, 8 or 64 partitions, with acks=1 and with acks=all in the default
// durable mode, where acks=all is answered only after the group commit's
// fsync. Compare the two acks in one run: docs/performance.md records the
// ratio. Each record's latency from Produce to acknowledgement is reported
// as p50/p99.
func BenchmarkKgoDurableProduce(b *testing.B) {
	for _, partitions := range []int32{1, 8, 64} {
		for _, acks := range []kgo.Acks{kgo.LeaderAck(), kgo.AllISRAcks()} {
			name := fmt.Sprintf("partitions=%d/acks=%s", partitions, acksName(acks))
			b.Run(name, func(b *testing.B) { benchmarkDurableProduce(b, partitions, acks) })
		}
	}
}

const durableBenchProducers = 4

func benchmarkDurableProduce(b *testing.B, partitions int32, acks kgo.Acks) {
	r := startNode(&testing.T{}, b.TempDir(), func(c *Config) { c.NumPartitions = partitions })
	defer r.stop()
	clients := make([]*kgo.Client, durableBenchProducers)
	for i := range clients {
		opts := []kgo.Opt{
			kgo.SeedBrokers(r.addr), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("bench"),
			kgo.RequiredAcks(acks), kgo.ProducerLinger(5 * time.Millisecond), kgo.ProducerBatchMaxBytes(1 << 20),
			kgo.MaxBufferedRecords(1 << 14), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		}
		if acks != kgo.AllISRAcks() {
			opts = append(opts, kgo.DisableIdempotentWrite())
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("warm-up")}).FirstErr(); err != nil {
			b.Fatal(err)
		}
		clients[i] = cl
	}
	value := make([]byte, 1024)
	latencies := make([]time.Duration, b.N)
	var failed sync.Once
	var firstErr error
	var wg sync.WaitGroup
	b.SetBytes(int64(len(value)))
	b.ResetTimer()
	for p, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var done sync.WaitGroup
			for i := p; i < b.N; i += len(clients) {
				done.Add(1)
				start := time.Now()
				cl.Produce(context.Background(), &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
					latencies[i] = time.Since(start)
					if err != nil {
						failed.Do(func() { firstErr = err })
					}
					done.Done()
				})
			}
			done.Wait()
		}()
	}
	wg.Wait()
	b.StopTimer()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	reportThroughputAndLatency(b, latencies)
	b.ReportMetric(float64(r.node.Metrics().SyncsStarted)/float64(b.N), "syncs/record")
}
