package broker

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker/storage"
	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/record"
	"github.com/kafkasim/kafkasim/sim"
)

// simBroker is a node inside the simulator, fed frames directly through a
// connection whose sent frames are captured.
type simBroker struct {
	sched *sim.Scheduler
	host  *sim.Node
	disk  *sim.Disk
	node  *Node
	wire  *captureConn
	conn  *conn
	cfg   Config
	// io, if set, replaces the environment's inline IO (see heldIO).
	io core.IO
}

type captureConn struct {
	sent   [][]byte
	closed bool
}

func (c *captureConn) Send(frame []byte) { c.sent = append(c.sent, frame) }
func (c *captureConn) Close()            { c.closed = true }
func (c *captureConn) LocalAddr() string { return "broker:9092" }
func (c *captureConn) RemoteAddr() string {
	return "client:1"
}

func newSimBroker(t testing.TB, seed uint64, configure func(*Config)) *simBroker {
	return newSimBrokerOnDisk(t, seed, sim.DiskOptions{}, configure)
}

func newSimBrokerOnDisk(t testing.TB, seed uint64, diskOptions sim.DiskOptions, configure func(*Config)) *simBroker {
	t.Helper()
	s := sim.NewScheduler(seed)
	host := s.AddNode("broker", sim.NodeOptions{})
	disk := sim.NewDisk(s.ForkRand(), diskOptions)
	// A plain FS, so that kill (a process crash) keeps the page cache and
	// only crash (power loss) forgets unsynced data.
	host.SetFS(disk)
	disk.Stall = host.Stall
	cfg := DefaultConfig()
	cfg.Listeners = []string{"broker:9092"}
	cfg.GroupInitialRebalanceDelayMs = 0
	cfg.AutoCreateTopics = true
	if configure != nil {
		configure(&cfg)
	}
	b := &simBroker{sched: s, host: host, disk: disk, cfg: cfg}
	b.boot(t)
	return b
}

// bootAttemptsMax bounds the boots retried after a transiently corrupt
// read (reads that never agreed): a supervisor restarts such a broker.
const bootAttemptsMax = 5

// boot builds the node from what the disk holds, as a restart does.
func (b *simBroker) boot(t testing.TB) {
	t.Helper()
	env := b.host.Env()
	env.IO = b.io
	node, err := New(env, b.cfg)
	for attempt := 1; err != nil && errors.Is(err, storage.ErrCorruptLog) && attempt < bootAttemptsMax; attempt++ {
		node, err = New(env, b.cfg)
	}
	if err != nil {
		t.Fatalf("boot: %v", err)
	}
	b.node = node
	b.wire = &captureConn{}
	b.conn = &conn{node: node, id: 1, net: b.wire}
	node.conns[1] = b.conn
}

// crash drops everything unsynced and boots again.
func (b *simBroker) crash(t testing.TB) {
	b.host.Crash()
	b.disk.Crash()
	b.host.Restart()
	b.boot(t)
}

// kill stops the process without losing the page cache (the disk is not
// crashed) and boots again.
func (b *simBroker) kill(t testing.TB) {
	b.host.Crash()
	b.host.Restart()
	b.boot(t)
}

// send feeds one request frame and runs the simulation for settle.
func (b *simBroker) send(frame []byte, settle time.Duration) {
	b.conn.OnFrame(b.wire, frame)
	b.sched.RunFor(settle)
}

// roundTrip sends a kmsg request and decodes the single response it gets.
func (b *simBroker) roundTrip(t testing.TB, req kmsg.Request) kmsg.Response {
	t.Helper()
	before := len(b.wire.sent)
	b.send(encodeRequest(req, 7), time.Second)
	if len(b.wire.sent) != before+1 {
		t.Fatalf("%s: %d responses, want 1", kmsg.NameForKey(req.Key()), len(b.wire.sent)-before)
	}
	resp := req.ResponseKind()
	frame := b.wire.sent[before][4:]
	if resp.IsFlexible() && resp.Key() != apiKeyAPIVersions {
		frame = frame[1:]
	}
	if err := resp.ReadFrom(frame); err != nil {
		t.Fatalf("%s response does not parse: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

// checkLogsIntact reads every partition from its start and checks that
// every stored batch is valid and offsets are contiguous.
func (b *simBroker) checkLogsIntact(t testing.TB) {
	t.Helper()
	for _, tp := range b.node.catalog.sorted() {
		for _, p := range tp.partitions {
			next := p.log.LogStartOffset()
			data, err := p.readForFetch(next, 1<<30, true, p.highWatermark(), nil)
			if err != nil {
				t.Fatalf("%s: read: %v", p, err)
			}
			for len(data) > 0 {
				h, err := record.Validate(data[:min(len(data), mustBatchSize(t, data))])
				if err != nil {
					t.Fatalf("%s: stored batch at %d is invalid: %v", p, next, err)
				}
				if h.BaseOffset != next {
					t.Fatalf("%s: batch at %d, expected %d", p, h.BaseOffset, next)
				}
				next = h.NextOffset()
				data = data[h.TotalBytes():]
			}
			if next != p.log.LogEndOffset() {
				t.Fatalf("%s: batches end at %d, log end offset %d", p, next, p.log.LogEndOffset())
			}
		}
	}
}

func mustBatchSize(t testing.TB, data []byte) int {
	size, err := record.BatchSize(data)
	if err != nil {
		t.Fatalf("stored data: %v", err)
	}
	return size
}

// produceRequest builds a Produce request with one batch of values.
func produceRequest(t testing.TB, topic string, partition int32, acks int16, spec record.BatchSpec, values ...string) *kmsg.ProduceRequest {
	t.Helper()
	recs := make([]record.Record, len(values))
	for i, v := range values {
		recs[i] = record.Record{Timestamp: 1_700_000_000_000, Value: []byte(v)}
	}
	batch, err := record.AppendBatch(nil, spec, recs)
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks = acks
	req.TimeoutMillis = 1000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func createTopic(t testing.TB, b *simBroker, name string, partitions int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(5)
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 1
	req.Topics = append(req.Topics, rt)
	resp := b.roundTrip(t, req).(*kmsg.CreateTopicsResponse)
	if code := resp.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create %s: error %d", name, code)
	}
}

func produceCode(t testing.TB, b *simBroker, req *kmsg.ProduceRequest) (int16, int64) {
	t.Helper()
	resp := b.roundTrip(t, req).(*kmsg.ProduceResponse)
	p := resp.Topics[0].Partitions[0]
	return p.ErrorCode, p.BaseOffset
}

var _ core.Conn = (*captureConn)(nil)

var errInjected = core.ErrIO
