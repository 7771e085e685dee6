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
// produces one record to it, over and over, for 5 s before the creation
// (the idle figures) and during it; the longest round trip of each is the
// stall. It then restarts the broker and measures how long it takes to
// serve (startup-s: the first thousand partitions recovered, listening)
// and until every partition is open (all-open-s). Run with
//
//	go test ./broker/ -run '^$' -bench ManyPartitions -benchtime 1x
//
// Figures are reported as metrics (create-s until the topic is visible
// whole; *-max-ms the prober's longest round trips; startup-s, all-open-s); nothing
// here asserts a duration.
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
		idle := probeFor(prober, 5*time.Second)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var busy probeStats
		wg.Add(1)
		go func() {
			defer wg.Done()
			busy = probe(prober, stop)
		}()
		started := time.Now()
		created, err := admin.CreateTopic(context.Background(), manyPartitions, 1, nil, "big")
		answerTime := time.Since(started)
		if err == nil {
			err = created.Err
		}
		if err != nil {
			b.Logf("create answered after %v: %v", answerTime.Round(time.Millisecond), err)
		}
		waitForPartitions(admin, "big", manyPartitions)
		createTime := time.Since(started)
		close(stop)
		wg.Wait()
		r.stop()
		started = time.Now()
		r = startNode(t, dir, nil)
		startupTime := time.Since(started)
		// Partitions beyond the first thousand open after the node serves,
		// a chunk per loop turn (startup.go): wait until every one leads.
		openAdmin, openClient := benchAdmin(b, r.addr)
		waitForLeaders(openAdmin, "big", manyPartitions)
		allOpenTime := time.Since(started)
		openClient.Close()
		r.stop()
		b.ReportMetric(createTime.Seconds(), "create-s")
		b.ReportMetric(float64(idle.metadataMax.Milliseconds()), "idle-metadata-max-ms")
		b.ReportMetric(float64(idle.produceMax.Milliseconds()), "idle-produce-max-ms")
		b.ReportMetric(float64(busy.metadataMax.Milliseconds()), "metadata-max-ms")
		b.ReportMetric(float64(busy.produceMax.Milliseconds()), "produce-max-ms")
		b.ReportMetric(float64(busy.probes), "probes")
		b.ReportMetric(startupTime.Seconds(), "startup-s")
		b.ReportMetric(allOpenTime.Seconds(), "all-open-s")
	}
}

// waitForPartitions polls Metadata until topic has want partitions: a
// creation that outlasts the request's timeout is answered
// REQUEST_TIMED_OUT and goes on.
func waitForPartitions(admin *kadm.Client, topic string, want int) {
	for {
		topics, err := admin.ListTopics(context.Background(), topic)
		if err == nil && len(topics[topic].Partitions) == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitForLeaders polls Metadata until want partitions of topic have a
// leader (a partition still opening after the start has none).
func waitForLeaders(admin *kadm.Client, topic string, want int) {
	for {
		topics, err := admin.ListTopics(context.Background(), topic)
		if err == nil {
			led := 0
			for _, p := range topics[topic].Partitions {
				if p.Leader >= 0 && p.Err == nil {
					led++
				}
			}
			if led == want {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// benchAdmin is an admin client of the broker at addr.
func benchAdmin(b *testing.B, addr string) (*kadm.Client, *kgo.Client) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		b.Fatal(err)
	}
	return kadm.NewClient(cl), cl
}

// probeStats are the longest round trips a prober saw.
type probeStats struct {
	metadataMax, produceMax time.Duration
	probes                  int
}

// probe sends a Metadata request for the probe topic and produces one
// record to it (acks=all, so each waits for an fsync), alternately, until
// stop closes.
func probe(cl *kgo.Client, stop <-chan struct{}) probeStats {
	var stats probeStats
	for {
		select {
		case <-stop:
			return stats
		default:
		}
		started := time.Now()
		req := kmsg.NewPtrMetadataRequest()
		topic := kmsg.NewMetadataRequestTopic()
		topic.Topic = kmsg.StringPtr("probe")
		req.Topics = append(req.Topics, topic)
		_, err := req.RequestWith(context.Background(), cl)
		stats.metadataMax = max(stats.metadataMax, time.Since(started))
		if err == nil {
			started = time.Now()
			cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("p")})
			stats.produceMax = max(stats.produceMax, time.Since(started))
		}
		stats.probes++
	}
}

// probeFor probes for d and returns what the prober saw.
func probeFor(cl *kgo.Client, d time.Duration) probeStats {
	stop := make(chan struct{})
	time.AfterFunc(d, func() { close(stop) })
	return probe(cl, stop)
}
