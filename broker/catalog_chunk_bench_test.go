package broker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// manyPartitions is the partition count of the "Many partitions" figures in
// docs/performance.md.
const manyPartitions = 10_000

// BenchmarkManyPartitions measures, on the real disk and real TCP, what
// other clients see while one client creates a topic of manyPartitions
// partitions: a prober sends a Metadata request for a small topic and
// produces one record to it, over and over, and the longest round trip of
// either is the stall. It then restarts the broker and measures how long
// startup (recovery of every partition, then listening) takes. Run with
//
//	go test ./broker/ -run '^$' -bench ManyPartitions -benchtime 1x
//
// Figures are reported as metrics; nothing here asserts a duration.
func BenchmarkManyPartitions(b *testing.B) {
	for b.Loop() {
		dir := b.TempDir()
		t := &testing.T{}
		r := startNode(t, dir, nil)
		admin := kadm.NewClient(newClient(t, r.addr, kgo.RequestTimeoutOverhead(time.Minute)))
		if _, err := admin.CreateTopic(context.Background(), 1, 1, nil, "probe"); err != nil {
			b.Fatal(err)
		}
		prober := newClient(t, r.addr, kgo.DefaultProduceTopic("probe"), kgo.RequestTimeoutOverhead(time.Minute))
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var stall time.Duration
		var probes int
		wg.Add(1)
		go func() {
			defer wg.Done()
			stall, probes = probe(prober, stop)
		}()
		started := time.Now()
		created, err := admin.CreateTopic(context.Background(), manyPartitions, 1, nil, "big")
		createTime := time.Since(started)
		close(stop)
		wg.Wait()
		if err == nil {
			err = created.Err
		}
		if err != nil {
			b.Logf("create reported: %v", err)
		}
		r.stop()
		started = time.Now()
		r = startNode(t, dir, nil)
		startupTime := time.Since(started)
		r.stop()
		b.ReportMetric(createTime.Seconds(), "create-s")
		b.ReportMetric(float64(stall.Milliseconds()), "max-stall-ms")
		b.ReportMetric(float64(probes), "probes")
		b.ReportMetric(startupTime.Seconds(), "startup-s")
	}
}

// probe sends a Metadata request for the probe topic and produces one
// record to it, alternately, until stop closes, and returns the longest
// round trip and how many it made.
func probe(cl *kgo.Client, stop <-chan struct{}) (time.Duration, int) {
	var longest time.Duration
	var probes int
	for {
		select {
		case <-stop:
			return longest, probes
		default:
		}
		started := time.Now()
		req := kmsg.NewPtrMetadataRequest()
		topic := kmsg.NewMetadataRequestTopic()
		topic.Topic = kmsg.StringPtr("probe")
		req.Topics = append(req.Topics, topic)
		if _, err := req.RequestWith(context.Background(), cl); err == nil {
			cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("p")})
		}
		longest = max(longest, time.Since(started))
		probes++
	}
}
