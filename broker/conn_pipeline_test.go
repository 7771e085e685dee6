package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core/record"
)

// These tests check the ordering rules of a connection's requests (the
// comment on conn, rules 1 to 6): acks=all Produce requests pipeline and
// share a group commit, answers leave in request order, and everything else
// waits for every earlier answer. They run on newHeldBroker, whose fsyncs
// complete only when the test releases them, so each test decides when
// each partition becomes durable and counts the fsyncs.

// pipelineBroker is a held broker with topics "t" and "u" (one partition
// each) and a fresh client connection to pipeline on.
type pipelineBroker struct {
	broker *simBroker
	io     *heldIO
	conn   *conn
	wire   *captureConn
}

func newPipelineBroker(t *testing.T) *pipelineBroker {
	t.Helper()
	b, io := newHeldBroker(t, nil)
	createTopic(t, b, "u", 1)
	io.release()
	c, wire := otherConn(b, 2)
	return &pipelineBroker{broker: b, io: io, conn: c, wire: wire}
}

// produce sends a Produce of one record to partition 0 of topic with the
// given acks and correlation id, without waiting for anything.
func (p *pipelineBroker) produce(t *testing.T, topic string, acks int16, correlationID int32) {
	t.Helper()
	req := produceRequest(t, topic, 0, acks, record.NewBatchSpec(record.CodecNone), "v")
	p.conn.OnFrame(p.wire, encodeRequest(req, correlationID))
}

// releaseAll completes fsyncs until none is in flight and returns how
// many there were.
func (p *pipelineBroker) releaseAll() int {
	syncs := 0
	for len(p.io.jobs) > 0 {
		syncs += len(p.io.jobs)
		p.io.release()
	}
	return syncs
}

// releaseJob completes only the i-th fsync in flight.
func (p *pipelineBroker) releaseJob(i int) {
	job := p.io.jobs[i]
	p.io.jobs = append(p.io.jobs[:i], p.io.jobs[i+1:]...)
	job.done(job.work())
}

// logEnd is the log end offset of partition 0 of topic.
func (p *pipelineBroker) logEnd(topic string) int64 {
	return p.broker.node.catalog.partition(topic, 0).log.LogEndOffset()
}

// correlationIDs are the correlation ids of the frames sent, in order
// (the network adds the size prefix, so a frame starts with its id).
func correlationIDs(t *testing.T, frames [][]byte) []int32 {
	t.Helper()
	ids := make([]int32, len(frames))
	for i, frame := range frames {
		if len(frame) < 4 {
			t.Fatalf("response %d is %d bytes, shorter than a header", i, len(frame))
		}
		ids[i] = int32(frame[0])<<24 | int32(frame[1])<<16 | int32(frame[2])<<8 | int32(frame[3])
	}
	return ids
}

func wantCorrelationIDs(t *testing.T, frames [][]byte, want ...int32) {
	t.Helper()
	got := correlationIDs(t, frames)
	if len(got) != len(want) {
		t.Fatalf("answers %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("answers %v, want %v", got, want)
		}
	}
}

// TestPipelinedProducesShareOneFsync sends five acks=all Produce requests
// to one partition on one connection before any fsync completes, then
// completes fsyncs until none is left: the first fsync covers the first
// append and the second covers the other four (appended while the first
// ran), so five requests cost two fsyncs, not five, and are answered in
// request order. Without pipelining each request appends only after the
// previous answer, and needs an fsync of its own.
func TestPipelinedProducesShareOneFsync(t *testing.T) {
	p := newPipelineBroker(t)
	for id := int32(1); id <= 5; id++ {
		p.produce(t, "t", -1, id)
	}
	if end := p.logEnd("t"); end != 5 {
		t.Errorf("log end %d before any fsync, want 5: the pipelined appends did not all run", end)
	}
	if len(p.wire.sent) != 0 {
		t.Fatal("acks=all answered before its fsync")
	}
	syncs := p.releaseAll()
	if syncs > 2 {
		t.Fatalf("%d fsyncs for five pipelined requests, want one or two", syncs)
	}
	wantCorrelationIDs(t, p.wire.sent, 1, 2, 3, 4, 5)
	if len(p.conn.inFlight) != 0 {
		t.Fatalf("%d requests still in flight after every answer", len(p.conn.inFlight))
	}
}

// TestPipelinedAnswersLeaveInRequestOrder pipelines a Produce to "t" and
// one to "u", then makes "u" durable first: the second answer is ready but
// must wait for the first, and both leave, in order, when "t" is durable.
// Each request's latency counts until its answer left: the clock moves
// 10 ms before "u" and 10 ms more before "t", so both latencies are 20 ms.
func TestPipelinedAnswersLeaveInRequestOrder(t *testing.T) {
	p := newPipelineBroker(t)
	produceLatency := &p.broker.node.metrics.requestCountersFor(int16(kmsg.Produce)).latency
	countBefore, sumBefore := produceLatency.count, produceLatency.sumSeconds
	p.produce(t, "t", -1, 1)
	p.produce(t, "u", -1, 2)
	if len(p.io.jobs) != 2 {
		t.Fatalf("%d fsyncs in flight, want one per partition: the second request did not start", len(p.io.jobs))
	}
	p.broker.sched.RunFor(10 * time.Millisecond)
	p.releaseJob(1) // "u" is durable: request 2 is answered, but must wait
	if len(p.wire.sent) != 0 {
		t.Fatalf("answers %v left before the first request's", correlationIDs(t, p.wire.sent))
	}
	if !p.conn.inFlight[1].ready {
		t.Fatal("the second request is not answered after its partition became durable")
	}
	p.broker.sched.RunFor(10 * time.Millisecond)
	p.releaseJob(0)
	wantCorrelationIDs(t, p.wire.sent, 1, 2)
	if got := produceLatency.count - countBefore; got != 2 {
		t.Fatalf("%d Produce latencies observed, want 2", got)
	}
	sum := time.Duration((produceLatency.sumSeconds - sumBefore) * float64(time.Second))
	if want := 40 * time.Millisecond; sum < want-time.Millisecond || sum > want+time.Millisecond {
		t.Fatalf("Produce latencies sum to %v, want %v (both answers left after 20 ms)", sum, want)
	}
}

// TestOnlyProducesWithAcksPipeline sends, behind an acks=all Produce that
// waits for its fsync, a second request of each kind: only a Produce with
// acks 1 or all starts (its append runs at once, its answer waits for the
// first); a Fetch, an ApiVersions and an acks=0 Produce wait until the
// first answer left. The Fetch then reads the first request's record (a
// client reads its own writes), and a Produce queued behind a waiting
// request does not overtake it (requests start in arrival order).
func TestOnlyProducesWithAcksPipeline(t *testing.T) {
	produceFrame := func(acks int16) func(*testing.T) []byte {
		return func(t *testing.T) []byte {
			return encodeRequest(produceRequest(t, "t", 0, acks, record.NewBatchSpec(record.CodecNone), "w"), 2)
		}
	}
	tests := []struct {
		name    string
		frame   func(*testing.T) []byte
		starts  bool
		answers bool // whether the second request is answered on the wire
	}{
		{"produce acks=all", produceFrame(-1), true, true},
		{"produce acks=1", produceFrame(1), true, true},
		{"produce acks=0", produceFrame(0), false, false},
		{"fetch", func(*testing.T) []byte { return encodeRequest(fetchFromStart("t"), 2) }, false, true},
		{"api versions", func(*testing.T) []byte { return encodeRequest(newAPIVersionsRequest(), 2) }, false, true},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			p := newPipelineBroker(t)
			p.produce(t, "t", -1, 1)
			p.conn.OnFrame(p.wire, test.frame(t))
			p.produce(t, "t", -1, 3) // queued behind the second
			if started := len(p.conn.inFlight) >= 2; started != test.starts {
				t.Fatalf("second request started: %v, want %v (%d in flight, %d queued)",
					started, test.starts, len(p.conn.inFlight), len(p.conn.queue))
			}
			wantEnd := int64(1)
			if test.starts {
				wantEnd = 3 // the third pipelines behind the second
			}
			if end := p.logEnd("t"); end != wantEnd {
				t.Fatalf("log end %d before the first fsync, want %d", end, wantEnd)
			}
			if len(p.wire.sent) != 0 {
				t.Fatalf("answers %v left before the first request's", correlationIDs(t, p.wire.sent))
			}
			p.releaseAll()
			want := []int32{1, 2, 3}
			if !test.answers {
				want = []int32{1, 3}
			}
			wantCorrelationIDs(t, p.wire.sent, want...)
			if test.name == "fetch" {
				fetch := decodeFetchFrame(t, p.wire.sent[1], 11)
				if hw := fetch.Topics[0].Partitions[0].HighWatermark; hw != 1 {
					t.Fatalf("fetch behind the produce saw high watermark %d, want 1 (its own write)", hw)
				}
			}
		})
	}
}

// TestPipelineStopsAtTheInFlightBound sends ten acks=all Produce requests
// before any fsync: eight start (connRequestsInFlightMax), two wait in the
// queue without appending, and all ten are answered in order once the
// fsyncs complete.
func TestPipelineStopsAtTheInFlightBound(t *testing.T) {
	p := newPipelineBroker(t)
	for id := int32(1); id <= 10; id++ {
		p.produce(t, "t", -1, id)
	}
	if len(p.conn.inFlight) != connRequestsInFlightMax || len(p.conn.queue) != 10-connRequestsInFlightMax {
		t.Fatalf("%d in flight and %d queued, want %d and %d",
			len(p.conn.inFlight), len(p.conn.queue), connRequestsInFlightMax, 10-connRequestsInFlightMax)
	}
	if end := p.logEnd("t"); end != connRequestsInFlightMax {
		t.Fatalf("log end %d, want %d: requests past the bound appended", end, connRequestsInFlightMax)
	}
	p.releaseAll()
	wantCorrelationIDs(t, p.wire.sent, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
}

// TestCloseWithdrawsEveryPipelinedRequestOnce closes a connection with
// three pipelined Produce requests parked and one answered behind them:
// each parked request is withdrawn exactly once (the purgatory gauge
// returns to its value before, and each cancel function runs once), the
// answered one's frame is not sent, and fsyncs completing afterwards send
// nothing and answer nothing twice.
func TestCloseWithdrawsEveryPipelinedRequestOnce(t *testing.T) {
	p := newPipelineBroker(t)
	purgatoryBefore := p.broker.node.metrics.producePurgatory
	for id := int32(1); id <= 3; id++ {
		p.produce(t, "t", -1, id)
	}
	p.produce(t, "u", 1, 4) // acks=1: answered at once, held behind the others
	if len(p.conn.inFlight) != 4 || !p.conn.inFlight[3].ready {
		t.Fatalf("%d requests in flight, want three parked and one answered", len(p.conn.inFlight))
	}
	cancels := make([]int, 3)
	for i, r := range p.conn.inFlight[:3] {
		withdraw := r.cancel
		r.cancel = func() { cancels[i]++; withdraw() }
	}
	p.conn.close()
	for i, n := range cancels {
		if n != 1 {
			t.Fatalf("request %d withdrawn %d times, want once", i+1, n)
		}
	}
	if got := p.broker.node.metrics.producePurgatory; got != purgatoryBefore {
		t.Fatalf("purgatory gauge %d after the close, want %d", got, purgatoryBefore)
	}
	p.releaseAll()
	if len(p.wire.sent) != 0 || !p.wire.closed {
		t.Fatalf("%d answers sent on a closed connection (closed: %v)", len(p.wire.sent), p.wire.closed)
	}
	if p.logEnd("t") != 3 || p.broker.node.catalog.partition("t", 0).log.DurableEndOffset() != 3 {
		t.Fatal("the appends of the withdrawn requests did not become durable")
	}
}

// TestRefusalsWaitForEarlierAnswers sends, behind an acks=all Produce
// waiting for its fsync, a request that closes the connection: an acks=0
// Produce to a missing partition (Kafka's way to report an acks=0 error)
// or a Produce frame cut short. The close must wait until the first answer
// left, not drop it.
func TestRefusalsWaitForEarlierAnswers(t *testing.T) {
	tests := []struct {
		name  string
		frame func(*testing.T) []byte
	}{
		{"acks=0 error", func(t *testing.T) []byte {
			return encodeRequest(produceRequest(t, "t", 7, 0, record.NewBatchSpec(record.CodecNone), "w"), 2)
		}},
		{"truncated produce", func(t *testing.T) []byte {
			frame := encodeRequest(produceRequest(t, "t", 0, -1, record.NewBatchSpec(record.CodecNone), "w"), 2)
			return frame[:len(frame)-10]
		}},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			p := newPipelineBroker(t)
			p.produce(t, "t", -1, 1)
			p.conn.OnFrame(p.wire, test.frame(t))
			if p.wire.closed {
				t.Fatal("connection closed before the first request was answered")
			}
			p.releaseAll()
			wantCorrelationIDs(t, p.wire.sent, 1)
			if !p.wire.closed {
				t.Fatal("connection still open after the refused request")
			}
		})
	}
}

// TestPipelinableProduceReadsAcks checks the peek at a queued frame's acks
// for every Produce version the broker answers, with and without a
// transactional id, against frames kmsg encodes; anything else, or a frame
// cut before its acks, is not pipelinable.
func TestPipelinableProduceReadsAcks(t *testing.T) {
	versions, _ := supportedVersions(int16(kmsg.Produce))
	for version := versions.min; version <= versions.max; version++ {
		for _, acks := range []int16{-1, 0, 1} {
			for _, transactionID := range []*string{nil, kmsg.StringPtr("txn-a")} {
				req := kmsg.NewPtrProduceRequest()
				req.SetVersion(version)
				req.Acks, req.TransactionID = acks, transactionID
				frame := encodeRequest(req, 5)
				if got, want := pipelinableProduce(frame), acks != 0; got != want {
					t.Errorf("v%d acks=%d transactional=%v: pipelinable %v, want %v",
						version, acks, transactionID != nil, got, want)
				}
				if pipelinableProduce(frame[:len(frame)-len(req.AppendTo(nil))+1]) {
					t.Errorf("v%d: a frame cut before its acks is pipelinable", version)
				}
			}
		}
	}
	if pipelinableProduce(encodeRequest(fetchFromStart("t"), 5)) {
		t.Error("a Fetch is pipelinable")
	}
	if pipelinableProduce(nil) {
		t.Error("an empty frame is pipelinable")
	}
}
