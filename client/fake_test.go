package client

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/record"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeClock is a manual clock: timers run, in (time, creation) order, only
// when the test advances it. Everything in a unit test is such a timer, so a
// test is one deterministic sequence of events.
type fakeClock struct {
	now    time.Time
	seq    uint64
	timers []*fakeTimer
}

type fakeTimer struct {
	when    time.Time
	seq     uint64
	f       func()
	stopped bool
	fired   bool
}

func (t *fakeTimer) Stop() bool {
	was := !t.stopped && !t.fired
	t.stopped = true
	return was
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1_700_000_000, 0)}
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) AfterFunc(d time.Duration, f func()) core.Timer {
	c.seq++
	t := &fakeTimer{when: c.now.Add(max(d, 0)), seq: c.seq, f: f}
	i, _ := slices.BinarySearchFunc(c.timers, t, func(a, b *fakeTimer) int {
		if c := a.when.Compare(b.when); c != 0 {
			return c
		}
		return int(a.seq) - int(b.seq)
	})
	c.timers = slices.Insert(c.timers, i, t)
	return t
}

// step runs the next live timer due at or before deadline.
func (c *fakeClock) step(deadline time.Time) bool {
	for len(c.timers) > 0 {
		t := c.timers[0]
		if t.when.After(deadline) {
			return false
		}
		c.timers = c.timers[1:]
		if t.stopped {
			continue
		}
		c.now = t.when
		t.fired = true
		t.f()
		return true
	}
	return false
}

// run runs every event within d of virtual time, then sets the clock to
// now+d.
func (c *fakeClock) run(d time.Duration) {
	deadline := c.now.Add(d)
	for steps := 0; c.step(deadline); steps++ {
		if steps > 10_000_000 {
			panic("fake clock: runaway events")
		}
	}
	c.now = deadline
}

// runUntil runs events until cond holds, failing the test if it does not
// within limit of virtual time.
func (c *fakeClock) runUntil(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := c.now.Add(limit)
	for !cond() {
		if !c.step(deadline) {
			t.Fatalf("condition not reached within %v of virtual time", limit)
		}
	}
}

// fakeNet is an in-memory core.Network whose deliveries are clock events
// latency apart.
type fakeNet struct {
	clock   *fakeClock
	latency time.Duration
	brokers map[string]*fakeBroker
	dials   int
}

func (n *fakeNet) Listen(string, func(core.Conn) core.ConnHandler) (core.Listener, error) {
	return nil, fmt.Errorf("fake network: no listening")
}

func (n *fakeNet) Dial(addr string, h core.ConnHandler) core.Conn {
	n.dials++
	c := &fakeConn{net: n, h: h, addr: addr}
	n.clock.AfterFunc(n.latency, func() {
		b, ok := n.brokers[addr]
		if !ok || b.down {
			c.closed = true
			h.OnClose(c, core.ErrConnRefused)
			return
		}
		b.conns = append(b.conns, c)
		h.OnOpen(c)
	})
	return c
}

type fakeConn struct {
	net    *fakeNet
	h      core.ConnHandler
	addr   string
	closed bool
}

func (c *fakeConn) Send(frame []byte) {
	if c.closed {
		return
	}
	c.net.clock.AfterFunc(c.net.latency, func() {
		if !c.closed {
			c.net.brokers[c.addr].receive(c, frame)
		}
	})
}

func (c *fakeConn) Close() {
	if c.closed {
		return
	}
	c.closed = true
	c.net.clock.AfterFunc(0, func() { c.h.OnClose(c, nil) })
}

func (c *fakeConn) LocalAddr() string  { return "client" }
func (c *fakeConn) RemoteAddr() string { return c.addr }

// reset breaks the connection from the broker's side.
func (c *fakeConn) reset() {
	if c.closed {
		return
	}
	c.closed = true
	c.net.clock.AfterFunc(0, func() { c.h.OnClose(c, core.ErrConnReset) })
}

// fakeBroker speaks kmsg on fake connections. handle answers each request;
// a nil response means "no answer" (the test may answer later with reply).
type fakeBroker struct {
	net    *fakeNet
	node   int32
	addr   string
	down   bool
	conns  []*fakeConn
	handle func(b *fakeBroker, c *fakeConn, corr int32, req kmsg.Request) kmsg.Response
	// received logs every request after ApiVersions.
	received []kmsg.Request
	// silentHandshakes is how many more ApiVersions requests the broker
	// leaves unanswered, as if the network dropped its answers.
	silentHandshakes int
}

func (b *fakeBroker) receive(c *fakeConn, frame []byte) {
	key := int16(binary.BigEndian.Uint16(frame))
	version := int16(binary.BigEndian.Uint16(frame[2:]))
	corr := int32(binary.BigEndian.Uint32(frame[4:]))
	rest := frame[8:]
	idLen := int16(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if idLen > 0 {
		rest = rest[idLen:]
	}
	req := kmsg.RequestForKey(key)
	req.SetVersion(version)
	if req.IsFlexible() {
		rest = rest[1:] // An empty tag section.
	}
	if err := req.ReadFrom(rest); err != nil {
		panic(fmt.Sprintf("fake broker: bad request key %d v%d: %v", key, version, err))
	}
	if key == keyApiVersions {
		if b.silentHandshakes > 0 {
			b.silentHandshakes--
			return
		}
		b.reply(c, corr, req, apiVersionsResponse(req))
		return
	}
	b.received = append(b.received, req)
	if resp := b.handle(b, c, corr, req); resp != nil {
		b.reply(c, corr, req, resp)
	}
}

// reply sends resp, encoded at req's version.
func (b *fakeBroker) reply(c *fakeConn, corr int32, req kmsg.Request, resp kmsg.Response) {
	resp.SetVersion(req.GetVersion())
	out := binary.BigEndian.AppendUint32(nil, uint32(corr))
	if req.IsFlexible() && req.Key() != keyApiVersions {
		out = append(out, 0)
	}
	out = resp.AppendTo(out)
	b.net.clock.AfterFunc(b.net.latency, func() {
		if !c.closed {
			c.h.OnFrame(c, out)
		}
	})
}

// apiVersionsResponse advertises every API this client speaks at its max.
func apiVersionsResponse(req kmsg.Request) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	keys := make([]int16, 0, len(clientVersions))
	for k := range clientVersions { // order-independent: sorted below
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ak := kmsg.NewApiVersionsResponseApiKey()
		ak.ApiKey, ak.MinVersion, ak.MaxVersion = k, 0, clientVersions[k].max
		resp.ApiKeys = append(resp.ApiKeys, ak)
	}
	return resp
}

// testCluster is a fake network with brokers and a client Cluster on it.
type testCluster struct {
	clock   *fakeClock
	net     *fakeNet
	cluster *Cluster
	brokers []*fakeBroker
	// topics are the partition counts the default Metadata handler reports;
	// every partition is led by brokers[0].
	topics map[string]int32
}

func newTestCluster(t *testing.T, brokers int) *testCluster {
	t.Helper()
	clock := newFakeClock()
	n := &fakeNet{clock: clock, latency: time.Millisecond, brokers: make(map[string]*fakeBroker)}
	tc := &testCluster{clock: clock, net: n, topics: map[string]int32{}}
	var bootstrap []string
	for i := range brokers {
		b := &fakeBroker{net: n, node: int32(i), addr: fmt.Sprintf("broker%d:9092", i)}
		b.handle = tc.defaultHandle
		n.brokers[b.addr] = b
		tc.brokers = append(tc.brokers, b)
		bootstrap = append(bootstrap, b.addr)
	}
	env := core.Env{Clock: clock, Rand: core.NewRand(1), Net: n}
	c, err := NewCluster(env, ClusterConfig{Bootstrap: bootstrap, RequestTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tc.cluster = c
	return tc
}

// defaultHandle answers Metadata from tc.topics and InitProducerId; any
// other request is a test bug unless the test installs its own handler.
func (tc *testCluster) defaultHandle(b *fakeBroker, c *fakeConn, corr int32, req kmsg.Request) kmsg.Response {
	switch r := req.(type) {
	case *kmsg.MetadataRequest:
		return tc.metadata(r)
	case *kmsg.InitProducerIDRequest:
		resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ProducerID, resp.ProducerEpoch = 7, 0
		return resp
	case *kmsg.FindCoordinatorRequest:
		resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
		resp.NodeID, resp.Host, resp.Port = 0, "broker0", 9092
		return resp
	}
	panic(fmt.Sprintf("fake broker: unexpected request key %d", req.Key()))
}

func (tc *testCluster) metadata(r *kmsg.MetadataRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	for _, b := range tc.brokers {
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port = b.node, fmt.Sprintf("broker%d", b.node), 9092
		resp.Brokers = append(resp.Brokers, mb)
	}
	for _, rt := range r.Topics {
		mt := kmsg.NewMetadataResponseTopic()
		mt.Topic = rt.Topic
		n, ok := tc.topics[*rt.Topic]
		if !ok {
			mt.ErrorCode = 3 // UNKNOWN_TOPIC_OR_PARTITION
		}
		for p := range n {
			mp := kmsg.NewMetadataResponseTopicPartition()
			mp.Partition, mp.Leader, mp.LeaderEpoch = p, 0, 1
			mt.Partitions = append(mt.Partitions, mp)
		}
		resp.Topics = append(resp.Topics, mt)
	}
	return resp
}

// chain installs h before the default handler: h returns handled=false to
// pass a request on.
func (tc *testCluster) chain(b *fakeBroker, h func(c *fakeConn, corr int32, req kmsg.Request) (kmsg.Response, bool)) {
	b.handle = func(b *fakeBroker, c *fakeConn, corr int32, req kmsg.Request) kmsg.Response {
		if resp, ok := h(c, corr, req); ok {
			return resp
		}
		return tc.defaultHandle(b, c, corr, req)
	}
}

// produceOK answers a Produce request, appending each batch to log and
// returning its base offset.
func produceOK(req *kmsg.ProduceRequest, log map[TopicPartition][]record.Header) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			h, err := record.Validate(p.Records)
			if err != nil {
				panic(err)
			}
			tp := TopicPartition{t.Topic, p.Partition}
			base := int64(0)
			if n := len(log[tp]); n > 0 {
				last := log[tp][n-1]
				base = last.BaseOffset + int64(last.LastOffsetDelta) + 1
			}
			h.BaseOffset = base
			log[tp] = append(log[tp], h)
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition, rp.BaseOffset = p.Partition, base
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// produceError answers every partition of a Produce request with code.
func produceError(req *kmsg.ProduceRequest, code int16) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.BaseOffset = p.Partition, code, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// offsetCommitAnswer answers every partition of an OffsetCommit with code.
func offsetCommitAnswer(r *kmsg.OffsetCommitRequest, code int16) *kmsg.OffsetCommitResponse {
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, rt := range r.Topics {
		t := kmsg.NewOffsetCommitResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewOffsetCommitResponseTopicPartition()
			p.Partition, p.ErrorCode = rp.Partition, code
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}
