package broker

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core/record"
	"github.com/kafkasim/kafkasim/sim"
)

// heldIO is a core.IO that holds every job until the test releases it, so
// a test decides exactly when an fsync completes.
type heldIO struct{ jobs []heldJob }

type heldJob struct {
	work func() error
	done func(error)
}

func (h *heldIO) Submit(work func() error, done func(error)) {
	h.jobs = append(h.jobs, heldJob{work: work, done: done})
}

// release completes every held job, in submission order.
func (h *heldIO) release() {
	jobs := h.jobs
	h.jobs = nil
	for _, j := range jobs {
		j.done(j.work())
	}
}

// newHeldBroker is a simulated broker whose fsyncs wait for release.
func newHeldBroker(t *testing.T, configure func(*Config)) (*simBroker, *heldIO) {
	t.Helper()
	io := &heldIO{}
	s := sim.NewScheduler(1)
	host := s.AddNode("broker", sim.NodeOptions{})
	disk := sim.NewDisk(s.ForkRand(), sim.DiskOptions{})
	host.SetFS(disk)
	cfg := DefaultConfig()
	cfg.Listeners = []string{"broker:9092"}
	cfg.AutoCreateTopics = true
	if configure != nil {
		configure(&cfg)
	}
	b := &simBroker{sched: s, host: host, disk: disk, cfg: cfg, io: io}
	b.boot(t)
	createTopic(t, b, "t", 1)
	io.release()
	return b, io
}

// otherConn opens a second client connection on b, since one connection
// answers its requests strictly in order.
func otherConn(b *simBroker, id uint64) (*conn, *captureConn) {
	wire := &captureConn{}
	c := &conn{node: b.node, id: id, net: wire}
	b.node.conns[id] = c
	return c, wire
}

// fetchFromStart is a Fetch v11 of partition 0 of topic from offset 0,
// without waiting.
func fetchFromStart(topic string) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(11)
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = 1<<20, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// fetchHighWatermark asks for the partition from offset 0 and returns the
// high watermark and how many bytes of batches came back.
func fetchHighWatermark(t *testing.T, b *simBroker) (int64, int) {
	t.Helper()
	resp := b.roundTrip(t, fetchFromStart("t")).(*kmsg.FetchResponse)
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("fetch: error %d", p.ErrorCode)
	}
	return p.HighWatermark, len(p.RecordBatches)
}

// TestDurableModeWaitsForTheGroupCommit checks the default mode: acks=all
// is answered only after the fsync completes, acks=1 at once, and
// consumers see nothing that is not durable.
func TestDurableModeWaitsForTheGroupCommit(t *testing.T) {
	b, io := newHeldBroker(t, nil)
	allConn, allWire := otherConn(b, 2)
	allConn.OnFrame(allWire, encodeRequest(produceRequest(t, "t", 0, -1, record.NewBatchSpec(record.CodecNone), "a"), 1))
	if len(allWire.sent) != 0 {
		t.Fatal("acks=all answered before its fsync completed")
	}
	if code, offset := produceCode(t, b, produceRequest(t, "t", 0, 1, record.NewBatchSpec(record.CodecNone), "b")); code != 0 || offset != 1 {
		t.Fatalf("acks=1: code %d offset %d, want 0 and 1", code, offset)
	}
	if hw, bytes := fetchHighWatermark(t, b); hw != 0 || bytes != 0 {
		t.Fatalf("before the fsync: high watermark %d, %d bytes served; want 0 and 0", hw, bytes)
	}
	if len(io.jobs) != 1 {
		t.Fatalf("%d fsyncs in flight, want one for both appends (group commit)", len(io.jobs))
	}
	io.release() // covers "a" only: "b" was appended after the job started
	if len(allWire.sent) != 1 {
		t.Fatal("acks=all not answered after its fsync completed")
	}
	if hw, _ := fetchHighWatermark(t, b); hw != 1 {
		t.Fatalf("after the first fsync: high watermark %d, want 1", hw)
	}
	io.release() // the next group: "b"
	if hw, _ := fetchHighWatermark(t, b); hw != 2 {
		t.Fatalf("after the second fsync: high watermark %d, want 2", hw)
	}
}

// TestDurableModeAcksAllSurvivesPowerLoss loses power while an fsync is in
// flight: the answered acks=all record survives, the unsynced acks=1
// record does not, and its offset is given to the next record.
func TestDurableModeAcksAllSurvivesPowerLoss(t *testing.T) {
	b, io := newHeldBroker(t, nil)
	allConn, allWire := otherConn(b, 2)
	allConn.OnFrame(allWire, encodeRequest(produceRequest(t, "t", 0, -1, record.NewBatchSpec(record.CodecNone), "a"), 1))
	io.release()
	if len(allWire.sent) != 1 {
		t.Fatal("acks=all not answered")
	}
	if code, _ := produceCode(t, b, produceRequest(t, "t", 0, 1, record.NewBatchSpec(record.CodecNone), "b")); code != 0 {
		t.Fatalf("acks=1: code %d", code)
	}
	b.crash(t) // the fsync of "b" never ran
	io.jobs = nil
	if end := b.node.catalog.partition("t", 0).log.LogEndOffset(); end != 1 {
		t.Fatalf("log end %d after power loss, want 1 (the durable acks=all record only)", end)
	}
}

// TestCachingModeAnswersAfterTheWrite checks log.write.caching=true: the
// high watermark is the written end, so acks=all is answered and consumers
// read before any fsync.
func TestCachingModeAnswersAfterTheWrite(t *testing.T) {
	b, io := newHeldBroker(t, func(c *Config) { c.WriteCaching = true })
	if code, offset := produceCode(t, b, produceRequest(t, "t", 0, -1, record.NewBatchSpec(record.CodecNone), "a")); code != 0 || offset != 0 {
		t.Fatalf("acks=all in caching mode: code %d offset %d", code, offset)
	}
	if hw, bytes := fetchHighWatermark(t, b); hw != 1 || bytes == 0 {
		t.Fatalf("caching mode: high watermark %d with %d bytes, want 1 and the record", hw, bytes)
	}
	if len(io.jobs) != 1 {
		t.Fatalf("%d fsyncs scheduled, want 1: caching mode still syncs in the background", len(io.jobs))
	}
}

// TestPurgatoryTimesOut leaves the fsync hanging past the request's
// timeout: the producer gets REQUEST_TIMED_OUT (an indefinite outcome),
// and the record becomes visible once the fsync finally completes.
func TestPurgatoryTimesOut(t *testing.T) {
	b, io := newHeldBroker(t, nil)
	req := produceRequest(t, "t", 0, -1, record.NewBatchSpec(record.CodecNone), "slow")
	req.TimeoutMillis = 100
	resp := b.roundTrip(t, req).(*kmsg.ProduceResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.RequestTimedOut.Code {
		t.Fatalf("error %d, want REQUEST_TIMED_OUT", code)
	}
	if b.node.Metrics().ProducePurgatory != 0 {
		t.Fatal("a timed-out request is still counted in the purgatory")
	}
	io.release()
	b.sched.RunFor(time.Millisecond)
	if hw, _ := fetchHighWatermark(t, b); hw != 1 {
		t.Fatalf("high watermark %d after the late fsync, want 1", hw)
	}
}

// TestDurableWaitersCompleteInOffsetOrder: waiters complete in the order
// of the offsets they wait for, not the order they started waiting (an
// append that rolls a segment syncs inline, and a waiter completed by that
// sync may append again before the outer append starts to wait: sim seeds
// 602224 and 603343 completed a group's offset commits out of order), and
// a failure reported behind due waiters while they complete waits for
// them (failInOrder).
func TestDurableWaitersCompleteInOffsetOrder(t *testing.T) {
	b, io := newHeldBroker(t, nil)
	for _, v := range []string{"a", "b", "c"} {
		if code, _ := produceCode(t, b, produceRequest(t, "t", 0, 1, record.NewBatchSpec(record.CodecNone), v)); code != 0 {
			t.Fatalf("produce %s: code %d", v, code)
		}
	}
	p := b.node.catalog.partition("t", 0)
	var order []string
	p.whenDurable(3, func(error) { order = append(order, "end 3") })
	p.whenDurable(2, func(error) {
		order = append(order, "end 2")
		p.failInOrder(errors.New("a later append failed"), func(error) { order = append(order, "failure") })
	})
	for len(io.jobs) > 0 {
		io.release()
	}
	if want := []string{"end 2", "end 3", "failure"}; !slices.Equal(order, want) {
		t.Fatalf("completions %v, want %v", order, want)
	}
}
