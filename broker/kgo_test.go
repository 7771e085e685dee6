package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/disk"
	knet "github.com/kafkasim/kafkasim/net"
)

// hangGuard bounds every wait in these tests; it only turns a hang into a
// failure and is never what a test measures.
const hangGuard = 30 * time.Second

// runningNode is a broker on the production runtime (real TCP on loopback,
// real files in a temporary directory), as cmd/broker runs it.
type runningNode struct {
	loop *knet.Loop
	tcp  *knet.TCP
	io   *knet.IOPool
	node *Node
	addr string
	done chan struct{}
}

// startNode starts a node on 127.0.0.1 port 0 over dir and stops it when
// the test ends.
func startNode(t *testing.T, dir string, configure func(*Config)) *runningNode {
	t.Helper()
	return startNodeOn(t, dir, configure, nil)
}

// startNodeOn is startNode whose node uses wrap(tcp) as its network, or
// the TCP network itself when wrap is nil.
func startNodeOn(t *testing.T, dir string, configure func(*Config), wrap func(*knet.TCP) core.Network) *runningNode {
	t.Helper()
	fsys, err := disk.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Listeners = []string{"127.0.0.1:0"}
	cfg.LogDir = "."
	cfg.GroupInitialRebalanceDelayMs = 0
	if configure != nil {
		configure(&cfg)
	}
	r := &runningNode{loop: knet.NewLoop(), done: make(chan struct{})}
	r.tcp, err = knet.NewTCP(r.loop, knet.TCPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var network core.Network = r.tcp
	if wrap != nil {
		network = wrap(r.tcp)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r.io = knet.NewIOPool(r.loop, ioWorkers)
	env := core.Env{Clock: knet.NewClock(r.loop), Rand: core.NewRand(1), FS: fsys, Net: network, IO: r.io, Log: log}
	started := make(chan error, 1)
	r.loop.Post(func() {
		r.node, err = New(env, cfg)
		if err == nil {
			err = r.node.Start()
		}
		if err == nil {
			r.addr = r.node.Addrs()[0]
		}
		started <- err
	})
	go func() {
		r.loop.Run()
		close(r.done)
	}()
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.stop)
	return r
}

// stop shuts the node down cleanly, as SIGTERM does.
func (r *runningNode) stop() {
	select {
	case <-r.done:
		return
	default:
	}
	r.loop.Post(func() {
		r.node.Stop()
		r.loop.Stop()
	})
	<-r.done
	r.tcp.Close()
	r.io.Close()
}

// ioWorkers is the size of the test broker's fsync pool, as cmd/broker's.
const ioWorkers = 16

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RetryTimeout(hangGuard), kgo.AllowAutoTopicCreation()}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	t.Cleanup(cancel)
	return ctx
}

// consumeAll reads partition records from the start until it has want of
// them.
func consumeAll(t *testing.T, addr, topic string, want int) []*kgo.Record {
	t.Helper()
	cl := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx := testContext(t)
	var got []*kgo.Record
	for len(got) < want {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records before the hang guard: %v", len(got), want, err)
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			t.Fatalf("fetch %s-%d: %v", topic, partition, err)
		})
		got = append(got, fetches.Records()...)
	}
	return got
}

// TestKgoProducesAndConsumesEveryCodec checks the produce and fetch paths
// against franz-go, an independent client: an idempotent producer writes
// keyed records with each compression codec, and a consumer reads back
// exactly those records, in order per partition, with keys, values, headers
// and offsets intact.
func TestKgoProducesAndConsumesEveryCodec(t *testing.T) {
	r := startNode(t, t.TempDir(), func(c *Config) { c.NumPartitions = 3 })
	codecs := []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()}
	const perCodec = 200
	for i, codec := range codecs {
		producer := newClient(t, r.addr, kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic("codecs"))
		var records []*kgo.Record
		for j := range perCodec {
			records = append(records, &kgo.Record{
				Key:     fmt.Appendf(nil, "key-%d", j%7),
				Value:   fmt.Appendf(nil, "codec-%d-value-%d", i, j),
				Headers: []kgo.RecordHeader{{Key: "h", Value: []byte{byte(i)}}},
			})
		}
		if err := producer.ProduceSync(testContext(t), records...).FirstErr(); err != nil {
			t.Fatalf("codec %d: %v", i, err)
		}
	}
	got := consumeAll(t, r.addr, "codecs", len(codecs)*perCodec)
	if len(got) != len(codecs)*perCodec {
		t.Fatalf("consumed %d records, want %d", len(got), len(codecs)*perCodec)
	}
	lastOffset := map[int32]int64{0: -1, 1: -1, 2: -1}
	seen := map[string]bool{}
	for _, rec := range got {
		if rec.Offset != lastOffset[rec.Partition]+1 {
			t.Fatalf("partition %d: offset %d after %d", rec.Partition, rec.Offset, lastOffset[rec.Partition])
		}
		lastOffset[rec.Partition] = rec.Offset
		if seen[string(rec.Value)] {
			t.Fatalf("duplicate value %s", rec.Value)
		}
		seen[string(rec.Value)] = true
		if len(rec.Headers) != 1 || rec.Headers[0].Key != "h" {
			t.Fatalf("headers lost: %+v", rec.Headers)
		}
	}
}

// TestKgoKeysLandWhereKafkaPutsThem checks that the same key always lands
// in the same partition (the client's murmur2 partitioner against our
// metadata), so ordering per key holds.
func TestKgoKeysLandWhereKafkaPutsThem(t *testing.T) {
	r := startNode(t, t.TempDir(), func(c *Config) { c.NumPartitions = 4 })
	producer := newClient(t, r.addr, kgo.DefaultProduceTopic("keys"))
	for j := range 100 {
		rec := &kgo.Record{Key: fmt.Appendf(nil, "k%d", j%5), Value: fmt.Appendf(nil, "%d", j)}
		if err := producer.ProduceSync(testContext(t), rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	partitionOf := map[string]int32{}
	for _, rec := range consumeAll(t, r.addr, "keys", 100) {
		if p, ok := partitionOf[string(rec.Key)]; ok && p != rec.Partition {
			t.Fatalf("key %s in partitions %d and %d", rec.Key, p, rec.Partition)
		}
		partitionOf[string(rec.Key)] = rec.Partition
	}
}

// TestKgoAdminTopics checks CreateTopics (with configs and validation),
// Metadata, DescribeConfigs, CreatePartitions, ListOffsets and DeleteTopics
// through franz-go's admin client, including the error codes for bad input.
func TestKgoAdminTopics(t *testing.T) {
	r := startNode(t, t.TempDir(), func(c *Config) { c.AutoCreateTopics = false })
	admin := kadm.NewClient(newClient(t, r.addr))
	ctx := testContext(t)

	created, err := admin.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": kadm.StringPtr("60000")}, "admin-topic")
	if err != nil || created.Err != nil {
		t.Fatalf("create: %v %v", err, created.Err)
	}
	if created.ID == (kadm.TopicID{}) {
		t.Fatal("created topic has no id")
	}
	bad := []struct {
		name    string
		parts   int32
		factor  int16
		configs map[string]*string
		want    error
	}{
		{"admin-topic", 1, 1, nil, kerr.TopicAlreadyExists},
		{"bad/name", 1, 1, nil, kerr.InvalidTopicException},
		{"rf3", 1, 3, nil, kerr.InvalidReplicationFactor},
		{"zero", 0, 1, nil, kerr.InvalidPartitions},
		{"cfg", 1, 1, map[string]*string{"no.such.config": kadm.StringPtr("1")}, kerr.InvalidConfig},
		{"cfg2", 1, 1, map[string]*string{"retention.ms": kadm.StringPtr("soon")}, kerr.InvalidConfig},
	}
	for _, b := range bad {
		_, err := admin.CreateTopic(ctx, b.parts, b.factor, b.configs, b.name)
		if !errors.Is(err, b.want) {
			t.Errorf("create %s: got %v, want %v", b.name, err, b.want)
		}
	}

	configs, err := admin.DescribeTopicConfigs(ctx, "admin-topic")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := configs.On("admin-topic", nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" {
			found = c.MaybeValue() == "60000" && c.Source == kmsg.ConfigSourceDynamicTopicConfig
		}
	}
	if !found {
		t.Fatalf("retention.ms override not described: %+v", rc.Configs)
	}

	if _, err := admin.CreatePartitions(ctx, 2, "admin-topic"); err != nil {
		t.Fatal(err)
	}
	details, err := admin.ListTopics(ctx, "admin-topic")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(details["admin-topic"].Partitions); n != 4 {
		t.Fatalf("after CreatePartitions: %d partitions, want 4", n)
	}

	ends, err := admin.ListEndOffsets(ctx, "admin-topic")
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil || o.Offset != 0 {
			t.Errorf("end offset of %s-%d: %d %v", o.Topic, o.Partition, o.Offset, o.Err)
		}
	})

	deleted, err := admin.DeleteTopics(ctx, "admin-topic", "never-existed")
	if err != nil {
		t.Fatal(err)
	}
	if deleted["admin-topic"].Err != nil || deleted["never-existed"].Err != kerr.UnknownTopicOrPartition {
		t.Fatalf("delete: %v / %v", deleted["admin-topic"].Err, deleted["never-existed"].Err)
	}
	names, err := admin.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if names.Has("admin-topic") {
		t.Fatal("deleted topic still listed")
	}
}

// TestRestartKeepsDataTopicIDsAndProducerState restarts the node cleanly and
// checks that records, the topic id (clients refuse a changed one), and the
// idempotent producer state (rebuilt from the log) all survive.
func TestRestartKeepsDataTopicIDsAndProducerState(t *testing.T) {
	dir := t.TempDir()
	r := startNode(t, dir, nil)
	producer := newClient(t, r.addr, kgo.DefaultProduceTopic("durable"))
	for j := range 50 {
		if err := producer.ProduceSync(testContext(t), &kgo.Record{Value: fmt.Appendf(nil, "v%d", j)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	admin := kadm.NewClient(newClient(t, r.addr))
	before, err := admin.ListTopics(testContext(t), "durable")
	if err != nil {
		t.Fatal(err)
	}
	r.stop()
	producer.Close()

	r2 := startNode(t, dir, nil)
	admin2 := kadm.NewClient(newClient(t, r2.addr))
	after, err := admin2.ListTopics(testContext(t), "durable")
	if err != nil {
		t.Fatal(err)
	}
	if before["durable"].ID != after["durable"].ID {
		t.Fatalf("topic id changed across restart: %v -> %v", before["durable"].ID, after["durable"].ID)
	}
	got := consumeAll(t, r2.addr, "durable", 50)
	values := make([]string, len(got))
	for i, rec := range got {
		values[i] = string(rec.Value)
	}
	if !sort.SliceIsSorted(got, func(i, j int) bool { return got[i].Offset < got[j].Offset }) || values[0] != "v0" || values[49] != "v49" {
		t.Fatalf("records after restart: %v", values)
	}
}

// TestKgoConsumerGroupRebalancesAndCommits runs a kgo consumer group of
// three members over six partitions. Every record produced is consumed by
// exactly one member per generation; when one member leaves, the other two
// take over its partitions; committed offsets survive a broker restart, so
// a new member of the group resumes where the group left off.
func TestKgoConsumerGroupRebalancesAndCommits(t *testing.T) {
	dir := t.TempDir()
	r := startNode(t, dir, func(c *Config) { c.NumPartitions = 6 })
	producer := newClient(t, r.addr, kgo.DefaultProduceTopic("grouped"))
	produce := func(from, to int) {
		for j := from; j < to; j++ {
			rec := &kgo.Record{Key: fmt.Appendf(nil, "k%d", j), Value: fmt.Appendf(nil, "v%d", j)}
			if err := producer.ProduceSync(testContext(t), rec).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(0, 300)
	newMember := func() *kgo.Client {
		return newClient(t, r.addr,
			kgo.ConsumerGroup("g1"), kgo.ConsumeTopics("grouped"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(200*time.Millisecond),
			kgo.DisableAutoCommit())
	}
	members := []*kgo.Client{newMember(), newMember(), newMember()}
	seen := map[string]int{}
	pollUntil := func(want int) {
		ctx := testContext(t)
		for len(seen) < want {
			for _, m := range members {
				pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
				fetches := m.PollFetches(pctx)
				cancel()
				for _, rec := range fetches.Records() {
					seen[string(rec.Value)]++
				}
				if err := m.CommitUncommittedOffsets(ctx); err != nil {
					t.Fatalf("commit: %v", err)
				}
			}
			if ctx.Err() != nil {
				t.Fatalf("saw %d of %d values before the hang guard", len(seen), want)
			}
		}
	}
	pollUntil(300)
	members[2].LeaveGroup()
	members[2].Close()
	members = members[:2]
	produce(300, 600)
	pollUntil(600)

	admin := kadm.NewClient(newClient(t, r.addr))
	described, err := admin.DescribeGroups(testContext(t), "g1")
	if err != nil {
		t.Fatal(err)
	}
	if g := described["g1"]; g.State != "Stable" || len(g.Members) != 2 {
		t.Fatalf("group after leave: state %s, %d members", g.State, len(g.Members))
	}
	for _, m := range members {
		m.Close()
	}
	r.stop()

	r2 := startNode(t, dir, func(c *Config) { c.NumPartitions = 6 })
	admin2 := kadm.NewClient(newClient(t, r2.addr))
	committed, err := admin2.FetchOffsets(testContext(t), "g1")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	committed.Each(func(o kadm.OffsetResponse) { total += o.At })
	if total != 600 {
		t.Fatalf("committed offsets after restart sum to %d, want 600", total)
	}
}
