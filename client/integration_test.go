package client

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/record"
	knet "github.com/kafkasim/kafkasim/net"
	"github.com/twmb/franz-go/pkg/kfake"
)

// hangGuard bounds how long an integration test waits for a completion
// callback. It only turns a hang into a failure; no test asserts timing.
const hangGuard = 60 * time.Second

// liveEnv runs a production runtime (net.Loop, net.Clock, net.TCP) against
// an in-process kfake cluster. Everything touching client objects runs on
// the loop through do.
type liveEnv struct {
	t       *testing.T
	loop    *knet.Loop
	env     core.Env
	cluster *Cluster
	fake    *kfake.Cluster
}

func newLiveEnv(t *testing.T, opts ...kfake.Opt) *liveEnv {
	t.Helper()
	fake, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	loop := knet.NewLoop()
	tcp, err := knet.NewTCP(loop, knet.TCPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	go loop.Run()
	le := &liveEnv{t: t, loop: loop, fake: fake,
		env: core.Env{Clock: knet.NewClock(loop), Rand: core.NewRand(42), Net: tcp}}
	le.do(func() {
		le.cluster, err = NewCluster(le.env, ClusterConfig{Bootstrap: fake.ListenAddrs(), RequestTimeout: 10 * time.Second})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		le.do(le.cluster.Close)
		loop.Stop()
		tcp.Close()
		fake.Close()
	})
	return le
}

// do runs f on the loop and waits for it to return.
func (le *liveEnv) do(f func()) {
	le.t.Helper()
	le.wait(func(done func()) { f(); done() })
}

// wait runs start on the loop and waits until it calls done.
func (le *liveEnv) wait(start func(done func())) {
	le.t.Helper()
	ch := make(chan struct{})
	le.loop.Post(func() { start(func() { close(ch) }) })
	select {
	case <-ch:
	case <-time.After(hangGuard):
		le.t.Fatal("hang guard: callback never came")
	}
}

// produce sends n records with values "<prefix>-i" to topic and returns
// their results in completion order.
func (le *liveEnv) produce(cfg ProducerConfig, topic, prefix string, n int) []Result {
	le.t.Helper()
	var results []Result
	le.wait(func(done func()) {
		p, err := NewProducer(le.cluster, cfg)
		if err != nil {
			le.t.Error(err)
			done()
			return
		}
		for i := range n {
			rec := Record{Topic: topic, Key: []byte(fmt.Sprint(i % 7)), Value: fmt.Appendf(nil, "%s-%d", prefix, i)}
			p.Produce(rec, func(r Result) { results = append(results, r) })
		}
		p.Flush(func() { p.Close(); done() })
	})
	return results
}

// consumeAssigned reads every partition of topic from the earliest offset
// until want records arrived.
func (le *liveEnv) consumeAssigned(topic string, partitions int32, want int) []Record {
	le.t.Helper()
	var got []Record
	le.wait(func(done func()) {
		c, err := NewConsumer(le.cluster, DefaultConsumerConfig(""))
		if err != nil {
			le.t.Error(err)
			done()
			return
		}
		var assign []PartitionOffset
		for p := range partitions {
			assign = append(assign, PartitionOffset{Topic: topic, Partition: p, Offset: OffsetEarliest})
		}
		if err := c.Assign(assign); err != nil {
			le.t.Error(err)
		}
		var loop func([]Record)
		loop = func(records []Record) {
			got = append(got, records...)
			if len(got) >= want {
				c.Close(done)
				return
			}
			_ = c.Poll(loop)
		}
		_ = c.Poll(loop)
	})
	return got
}

// checkInOrder checks that records of each partition have increasing
// offsets and that the values of each key arrive in production order.
func checkInOrder(t *testing.T, records []Record) {
	t.Helper()
	last := map[int32]int64{}
	for _, r := range records {
		if prev, ok := last[r.Partition]; ok && r.Offset <= prev {
			t.Fatalf("partition %d: offset %d after %d", r.Partition, r.Offset, prev)
		}
		last[r.Partition] = r.Offset
	}
}

// TestLiveProduceEveryCodecAndAcks produces with each codec and acks
// setting to kfake over real TCP, then consumes everything back with Assign:
// every acknowledged record is read back once at its acknowledged offset;
// with acks=0 every outcome is indefinite and the records still arrive.
func TestLiveProduceEveryCodecAndAcks(t *testing.T) {
	codecs := []record.Codec{record.CodecNone, record.CodecGzip, record.CodecSnappy, record.CodecLZ4, record.CodecZstd}
	var topics []string
	for _, codec := range codecs {
		for _, acks := range []int16{-1, 1, 0} {
			topics = append(topics, fmt.Sprintf("%v-%d", codec, acks))
		}
	}
	le := newLiveEnv(t, kfake.SeedTopics(3, topics...))
	const n = 300
	for _, codec := range codecs {
		for _, acks := range []int16{-1, 1, 0} {
			topic := fmt.Sprintf("%v-%d", codec, acks)
			cfg := DefaultProducerConfig()
			cfg.Compression, cfg.Acks = codec, acks
			results := le.produce(cfg, topic, topic, n)
			want := OutcomeOK
			if acks == 0 {
				want = OutcomeIndefinite
			}
			acked := map[string]int64{}
			for _, r := range results {
				if r.Outcome != want {
					t.Fatalf("%s: outcome %v (%v), want %v", topic, r.Outcome, r.Err, want)
				}
				acked[string(r.Record.Value)] = r.Offset
			}
			got := le.consumeAssigned(topic, 3, n)
			if len(got) != n || len(acked) != n {
				t.Fatalf("%s: read %d records, produced %d distinct", topic, len(got), len(acked))
			}
			checkInOrder(t, got)
			for _, r := range got {
				off, ok := acked[string(r.Value)]
				if !ok || (acks != 0 && off != r.Offset) {
					t.Fatalf("%s: read %q at %d, acknowledged at %d (%v)", topic, r.Value, r.Offset, off, ok)
				}
			}
		}
	}
}

// TestLiveIdempotentProducer produces with enable.idempotence and checks
// every record is OK, stored once, and each key's values keep their order.
func TestLiveIdempotentProducer(t *testing.T) {
	le := newLiveEnv(t, kfake.SeedTopics(3, "idem"))
	cfg := DefaultProducerConfig()
	cfg.Idempotent = true
	cfg.Compression = record.CodecZstd
	const n = 1000
	results := le.produce(cfg, "idem", "v", n)
	for _, r := range results {
		if r.Outcome != OutcomeOK {
			t.Fatalf("idempotent produce: %+v", r)
		}
	}
	got := le.consumeAssigned("idem", 3, n)
	checkInOrder(t, got)
	seen := map[string]bool{}
	for _, r := range got {
		if seen[string(r.Value)] {
			t.Fatalf("duplicate %q", r.Value)
		}
		seen[string(r.Value)] = true
	}
	if len(seen) != n {
		t.Fatalf("read %d distinct records, want %d", len(seen), n)
	}
}

// groupConsumer is one member of a live group and what it read.
type groupConsumer struct {
	c    *Consumer
	read []Record
}

// startGroupMember subscribes a consumer to topic in group and polls
// forever, committing after every poll (at-least-once).
func (le *liveEnv) startGroupMember(group, topic string) *groupConsumer {
	gc := &groupConsumer{}
	le.do(func() {
		cfg := DefaultConsumerConfig(group)
		cfg.AutoOffsetReset = ResetEarliest
		cfg.HeartbeatInterval = 100 * time.Millisecond
		cfg.SessionTimeout = 6 * time.Second
		cfg.RebalanceTimeout = 5 * time.Second
		cfg.AutoCommit = false
		cfg.OnError = func(err error) { le.t.Logf("consumer error: %v", err) }
		cfg.OnAssigned = func(tps []TopicPartition) { le.t.Logf("assigned %v", tps) }
		c, err := NewConsumer(le.cluster, cfg)
		if err != nil {
			le.t.Error(err)
			return
		}
		gc.c = c
		if err := c.Subscribe([]string{topic}); err != nil {
			le.t.Error(err)
		}
		var loop func([]Record)
		loop = func(records []Record) {
			gc.read = append(gc.read, records...)
			c.CommitPositions(func(error) {})
			_ = c.Poll(loop)
		}
		_ = c.Poll(loop)
	})
	return gc
}

// TestLiveGroupConsumeCommitResume runs a two-member group over kfake: the
// members together read every record, each partition is read by one member
// at a time, and after both close with their commits a new member of the
// group resumes after the committed offsets, reading only new records.
func TestLiveGroupConsumeCommitResume(t *testing.T) {
	le := newLiveEnv(t, kfake.SeedTopics(4, "g"))
	const n = 400
	le.produce(DefaultProducerConfig(), "g", "first", n)
	a := le.startGroupMember("grp", "g")
	b := le.startGroupMember("grp", "g")
	distinct := func() int {
		seen := map[string]bool{}
		for _, gc := range []*groupConsumer{a, b} {
			for _, r := range gc.read {
				seen[string(r.Value)] = true
			}
		}
		return len(seen)
	}
	waitFor(t, le, func() bool { return distinct() == n })
	waitFor(t, le, func() bool { return len(a.c.Assigned()) > 0 && len(b.c.Assigned()) > 0 })
	var assigned [][]TopicPartition
	le.do(func() { assigned = [][]TopicPartition{a.c.Assigned(), b.c.Assigned()} })
	if len(assigned[0])+len(assigned[1]) != 4 || slices.ContainsFunc(assigned[0], func(tp TopicPartition) bool { return slices.Contains(assigned[1], tp) }) {
		t.Fatalf("assignments overlap or miss partitions: %v", assigned)
	}
	le.wait(func(done func()) { a.c.Close(func() { b.c.Close(done) }) })
	le.produce(DefaultProducerConfig(), "g", "second", 10)
	c := le.startGroupMember("grp", "g")
	t.Log("resuming")
	waitFor(t, le, func() bool { return len(c.read) >= 10 })
	for _, r := range c.read {
		if string(r.Value[:6]) != "second" {
			t.Fatalf("resumed member re-read %q despite the commit", r.Value)
		}
	}
}

// waitFor polls cond on the loop until it holds, within the hang guard.
func waitFor(t *testing.T, le *liveEnv, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for time.Now().Before(deadline) {
		ok := false
		le.do(func() { ok = cond() })
		if ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("hang guard: condition never held")
}
