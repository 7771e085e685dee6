package checker

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// builder writes hand-made histories on partition "t-0" tersely.
type builder struct {
	h   History
	seq map[int64]int64
}

func newBuilder() *builder { return &builder{seq: make(map[int64]int64)} }

func (b *builder) add(op Op) int {
	if op.Topic == "" {
		op.Topic = "t"
	}
	b.h.Ops = append(b.h.Ops, op)
	return len(b.h.Ops) - 1
}

// produce records an idempotent, durable acks=all send by producer client
// (producer id = client), with the next seq of that producer.
func (b *builder) produce(client int, call, ret int64, outcome Outcome, value string, offset int64) *Produce {
	pid := int64(client)
	p := &Produce{Value: value, ProducerID: pid, Idempotent: true, Acks: AcksAll, Seq: b.seq[pid], Durable: true, Offset: offset}
	b.seq[pid]++
	b.add(Op{Client: client, Kind: KindProduce, Call: call, Return: ret, Outcome: outcome, Produce: p})
	return p
}

func (b *builder) poll(client int, call, ret int64, from int64, records ...Record) *Poll {
	p := &Poll{FetchOffset: from, Records: records}
	b.add(Op{Client: client, Kind: KindPoll, Call: call, Return: ret, Outcome: OutcomeOK, Poll: p})
	return p
}

// drain records a final poll by client 9.
func (b *builder) drain(call int64, from int64, records ...Record) *Poll {
	p := b.poll(9, call, call+1, from, records...)
	p.Final, p.Reset = true, true
	return p
}

func (b *builder) group(client int, kind Kind, call, ret int64, group string, offset int64) {
	b.add(Op{Client: client, Kind: kind, Call: call, Return: ret, Outcome: OutcomeOK, Group: &Group{Group: group, Offset: offset}})
}

// lookup records an ok lookup by time on "t-0" and its answer.
func (b *builder) lookup(client int, call, ret, target, offset, timestamp int64) *Lookup {
	l := &Lookup{Target: target, Offset: offset, Timestamp: timestamp}
	b.add(Op{Client: client, Kind: KindTimeLookup, Call: call, Return: ret, Outcome: OutcomeOK, Lookup: l})
	return l
}

func (b *builder) end(offset int64) {
	b.h.Ends = append(b.h.Ends, End{Topic: "t", Offset: offset})
}

func rec(offset int64, value string) Record { return Record{Offset: offset, Value: value} }

// kinds lists the kinds of anomalies, in order, for compact assertions.
func kinds(anomalies []Anomaly) []AnomalyKind {
	out := make([]AnomalyKind, len(anomalies))
	for i, a := range anomalies {
		out[i] = a.Kind
	}
	return out
}

// mustCheck runs Check and fails the test unless the anomaly kinds are
// exactly want (in report order).
func mustCheck(t *testing.T, h *History, want ...AnomalyKind) Result {
	t.Helper()
	r := Check(h, Options{})
	if r.Status == StatusInvalid {
		t.Fatalf("invalid history: %v\n%s", r.Err, h.Text())
	}
	if got := kinds(r.Anomalies); !slices.Equal(got, want) {
		t.Fatalf("anomalies %v, want %v\n%s\nhistory:\n%s", got, want, r.Report(), h.Text())
	}
	wantStatus := StatusOK
	if len(want) > 0 {
		wantStatus = StatusFail
	}
	if r.Status != wantStatus {
		t.Fatalf("status %s, want %s\n%s", r.Status, wantStatus, r.Report())
	}
	return r
}

// mentions fails the test unless the anomaly explanation contains every
// fragment.
func mentions(t *testing.T, a Anomaly, fragments ...string) {
	t.Helper()
	for _, f := range fragments {
		if !strings.Contains(a.Explanation, f) {
			t.Errorf("explanation %q lacks %q", a.Explanation, f)
		}
	}
}

// source is a random source for the history generator: rapid in property
// tests, core.Rand in benchmarks.
type source interface{ IntN(n int) int }

// genStep is one linearized operation of a generated partition: the op
// (without its window yet) and its linearization point.
type genStep struct {
	op         Op
	at         int64
	indefinite bool
}

// genPartition simulates a correct partition log sequentially, steps
// operations long, and appends the history to h: producers (idempotent or
// not, with acks 0, 1 or all, and outcomes ok, indefinite applied,
// indefinite not applied, and fail), sequential consumers that commit, random
// readers that reset before every poll, and a final drain with the end
// offset. Windows overlap across clients but not within one client.
func genPartition(r source, h *History, tp TopicPartition, steps int, clientBase int) {
	g := &generator{r: r, tp: tp, clientBase: clientBase, producers: 1 + r.IntN(3), consumers: 1 + r.IntN(2)}
	g.positions = make([]int64, g.consumers)
	for range g.producers {
		g.idempotent = append(g.idempotent, r.IntN(2) == 0)
		g.seqs = append(g.seqs, 0)
	}
	for s := range steps {
		g.at = int64(100 + 10*s)
		g.step()
	}
	g.at += 10
	final := &Poll{FetchOffset: 0, Reset: true, Final: true}
	for o, v := range g.log {
		final.Records = append(final.Records, Record{Offset: int64(o), Value: v})
	}
	g.emit(Op{Client: clientBase + g.producers + g.consumers + 1, Kind: KindPoll, Outcome: OutcomeOK, Poll: final}, false)
	g.flush(h)
	h.Ends = append(h.Ends, End{Topic: tp.Topic, Partition: tp.Partition, Offset: int64(len(g.log))})
}

type generator struct {
	r          source
	tp         TopicPartition
	clientBase int
	producers  int
	consumers  int
	idempotent []bool
	seqs       []int64
	positions  []int64
	log        []string
	at         int64
	steps      []genStep
	values     int
}

func (g *generator) emit(op Op, indefinite bool) {
	op.Topic, op.Partition = g.tp.Topic, g.tp.Partition
	g.steps = append(g.steps, genStep{op: op, at: g.at, indefinite: indefinite})
}

func (g *generator) step() {
	switch roll := g.r.IntN(100); {
	case roll < 45:
		g.produce()
	case roll < 70:
		g.consume()
	case roll < 85:
		g.read()
	default:
		c := g.r.IntN(g.consumers)
		g.emit(Op{Client: g.clientBase + g.producers + c, Kind: KindCommit, Outcome: OutcomeOK,
			Group: &Group{Group: fmt.Sprintf("g%d", c), Offset: g.positions[c]}}, false)
	}
}

func (g *generator) produce() {
	p := g.r.IntN(g.producers)
	g.values++
	value := fmt.Sprintf("%s/p%d-%d", g.tp, p, g.values)
	acks := []int8{AcksAll, AcksLeader, AcksNone}[g.r.IntN(3)]
	send := func(outcome Outcome, apply bool) {
		produce := &Produce{Value: value, ProducerID: int64(g.clientBase + p), Idempotent: g.idempotent[p], Acks: acks, Seq: g.seqs[p]}
		if apply && outcome == OutcomeOK {
			produce.Offset = int64(len(g.log))
			produce.Durable = acks == AcksAll
		}
		if apply {
			g.log = append(g.log, value)
		}
		g.emit(Op{Client: g.clientBase + p, Kind: KindProduce, Outcome: outcome, Produce: produce}, outcome == OutcomeIndefinite)
	}
	defer func() { g.seqs[p]++ }()
	switch roll := g.r.IntN(10); {
	case acks == AcksNone:
		send(OutcomeOK, roll < 7) // acks=0 learns nothing either way
	case roll < 6:
		send(OutcomeOK, true)
	case roll < 7:
		send(OutcomeIndefinite, true)
	case roll < 8:
		send(OutcomeIndefinite, false)
	case roll < 9:
		send(OutcomeFail, false)
	case g.idempotent[p]:
		send(OutcomeOK, true)
	default:
		// A non-idempotent retry: the first attempt timed out but landed,
		// the retry landed again and was acknowledged.
		send(OutcomeIndefinite, true)
		g.at += 3
		send(OutcomeOK, true)
	}
}

// consume polls the next records for a sequential consumer.
func (g *generator) consume() {
	c := g.r.IntN(g.consumers)
	from := g.positions[c]
	to := min(int64(len(g.log)), from+int64(g.r.IntN(6)))
	poll := &Poll{FetchOffset: from, Group: fmt.Sprintf("g%d", c), Reset: from == 0}
	for o := from; o < to; o++ {
		poll.Records = append(poll.Records, Record{Offset: o, Value: g.log[o]})
	}
	g.positions[c] = to
	g.emit(Op{Client: g.clientBase + g.producers + c, Kind: KindPoll, Outcome: OutcomeOK, Poll: poll}, false)
}

// read polls a random range after a reset.
func (g *generator) read() {
	from := int64(g.r.IntN(len(g.log) + 1))
	to := from + int64(g.r.IntN(len(g.log)-int(from)+1))
	poll := &Poll{FetchOffset: from, Reset: true}
	for o := from; o < to; o++ {
		poll.Records = append(poll.Records, Record{Offset: o, Value: g.log[o]})
	}
	g.emit(Op{Client: g.clientBase + g.producers + g.consumers, Kind: KindPoll, Outcome: OutcomeOK, Poll: poll}, false)
}

// flush gives every step a window around its linearization point that does
// not overlap its client's neighbours, and appends the ops to h. An
// indefinite op's window starts before its effect but may end before it
// too: the client gave up and the write landed later.
func (g *generator) flush(h *History) {
	const slackMax = 30
	nextAt := make(map[int]int64) // client -> linearization point of its next op
	lastReturn := make(map[int]int64)
	nexts := make([]int64, len(g.steps))
	for i := len(g.steps) - 1; i >= 0; i-- {
		c := g.steps[i].op.Client
		nexts[i] = g.steps[i].at + slackMax
		if at, ok := nextAt[c]; ok {
			nexts[i] = min(nexts[i], at-1)
		}
		nextAt[c] = g.steps[i].at
	}
	for i, s := range g.steps {
		c := s.op.Client
		low := s.at - int64(g.r.IntN(slackMax))
		if last, ok := lastReturn[c]; ok {
			low = max(low, last+1)
		}
		s.op.Call = low
		if s.indefinite {
			s.op.Return = low + int64(g.r.IntN(int(nexts[i]-low)+1))
		} else {
			s.op.Return = s.at + int64(g.r.IntN(int(nexts[i]-s.at)+1))
		}
		lastReturn[c] = s.op.Return
		h.Ops = append(h.Ops, s.op)
	}
}
