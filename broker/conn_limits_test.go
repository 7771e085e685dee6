package broker

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/record"
	"github.com/kafkasim/kafkasim/sim"
)

// connHarness is a started node inside the simulator that clients reach over
// the simulated network, with its log captured.
type connHarness struct {
	sched *sim.Scheduler
	node  *Node
	log   *bytes.Buffer
}

func newConnHarness(t *testing.T, configure func(*Config)) *connHarness {
	t.Helper()
	s := sim.NewScheduler(1)
	host := s.AddNode("broker", sim.NodeOptions{})
	host.SetFS(sim.NewDisk(s.ForkRand(), sim.DiskOptions{}))
	cfg := DefaultConfig()
	cfg.Listeners = []string{"broker:9092"}
	if configure != nil {
		configure(&cfg)
	}
	h := &connHarness{sched: s, log: &bytes.Buffer{}}
	env := host.Env()
	env.Log = slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{
		Level: slog.LevelInfo,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // the wall clock has no place in these lines
			}
			return a
		},
	}))
	node, err := New(env, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	h.node = node
	return h
}

// clientConn is one client connection's record of what happened to it.
type clientConn struct {
	conn   core.Conn
	frames [][]byte
	closed bool
}

func (c *clientConn) OnOpen(core.Conn)                  {}
func (c *clientConn) OnFrame(_ core.Conn, frame []byte) { c.frames = append(c.frames, frame) }
func (c *clientConn) OnClose(core.Conn, error)          { c.closed = true }

// dial connects a client from the simulated host named client (created on
// first use) and lets the connection settle.
func (h *connHarness) dial(t *testing.T, client string) *clientConn {
	t.Helper()
	host := h.sched.Node(client)
	if host == nil {
		host = h.sched.AddNode(client, sim.NodeOptions{})
	}
	c := &clientConn{}
	c.conn = host.Env().Net.Dial("broker:9092", c)
	if err := h.sched.RunFor(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	return c
}

// logLines returns the captured log lines that contain text.
func (h *connHarness) logLines(text string) []string {
	var lines []string
	for _, line := range strings.Split(h.log.String(), "\n") {
		if strings.Contains(line, text) {
			lines = append(lines, line)
		}
	}
	return lines
}

// TestConnectionLimitsRefuseAtAccept opens connections from two client
// hosts against max.connections and max.connections.per.ip, and checks
// which ones the broker closes at accept, the counters and the log lines.
func TestConnectionLimitsRefuseAtAccept(t *testing.T) {
	tests := []struct {
		name                  string
		total, perAddress     int32
		dials                 []string
		wantClosed            []bool
		wantRefusedTotal      int64
		wantRefusedPerAddress int64
		wantLog               string
	}{
		{name: "unlimited by default", total: 0, perAddress: 0,
			dials: []string{"a", "a", "a", "b"}, wantClosed: []bool{false, false, false, false}},
		{name: "max.connections", total: 2, perAddress: 0,
			dials: []string{"a", "b", "a", "b"}, wantClosed: []bool{false, false, true, true},
			wantRefusedTotal: 2, wantLog: "refusing connection: max.connections reached"},
		{name: "max.connections.per.ip", total: 0, perAddress: 2,
			dials: []string{"a", "a", "a", "b"}, wantClosed: []bool{false, false, true, false},
			wantRefusedPerAddress: 1, wantLog: "refusing connection: max.connections.per.ip reached"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			h := newConnHarness(t, func(c *Config) {
				if test.total > 0 {
					c.ConnectionsMax = test.total
				}
				if test.perAddress > 0 {
					c.ConnectionsPerAddressMax = test.perAddress
				}
			})
			var conns []*clientConn
			for _, client := range test.dials {
				conns = append(conns, h.dial(t, client))
			}
			for i, c := range conns {
				if c.closed != test.wantClosed[i] {
					t.Errorf("connection %d from %s: closed %v, want %v", i, test.dials[i], c.closed, test.wantClosed[i])
				}
			}
			m := h.node.Metrics().Connections
			if m.RefusedMaxConnections != test.wantRefusedTotal || m.RefusedPerAddress != test.wantRefusedPerAddress {
				t.Errorf("refused %d total and %d per address, want %d and %d",
					m.RefusedMaxConnections, m.RefusedPerAddress, test.wantRefusedTotal, test.wantRefusedPerAddress)
			}
			wantOpen := int64(0)
			for _, closed := range test.wantClosed {
				if !closed {
					wantOpen++
				}
			}
			if m.Open != wantOpen || m.Accepted != wantOpen {
				t.Errorf("open %d, accepted %d, want %d", m.Open, m.Accepted, wantOpen)
			}
			if refused := test.wantRefusedTotal + test.wantRefusedPerAddress; int64(len(h.logLines("refusing connection"))) != refused {
				t.Errorf("log lines %q, want %d refusals", h.logLines("refusing connection"), refused)
			}
			if test.wantLog != "" && len(h.logLines(test.wantLog)) == 0 {
				t.Errorf("no log line %q in:\n%s", test.wantLog, h.log)
			}
		})
	}
}

// TestConnectionLimitFreesOnClose checks that closing a connection gives
// its place back: after the one allowed connection of a host closes, the
// next from the same host is accepted.
func TestConnectionLimitFreesOnClose(t *testing.T) {
	h := newConnHarness(t, func(c *Config) { c.ConnectionsPerAddressMax = 1 })
	first := h.dial(t, "a")
	if refused := h.dial(t, "a"); !refused.closed {
		t.Fatal("second connection from a was accepted past max.connections.per.ip=1")
	}
	first.conn.Close()
	if err := h.sched.RunFor(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if again := h.dial(t, "a"); again.closed {
		t.Fatalf("connection after the first closed was refused:\n%s", h.log)
	}
}

// TestConnectionsMaxIdle checks connections.max.idle.ms: an idle connection
// closes between the setting and 1.1 times it after its last traffic, a
// connection with a request parked longer than that (a long-polling fetch)
// or with steady traffic stays open, and -1 keeps idle connections.
func TestConnectionsMaxIdle(t *testing.T) {
	const idle = 10 * time.Second
	tests := []struct {
		name       string
		idleMs     int64
		traffic    time.Duration // a request every traffic, 0 for none
		run        time.Duration
		wantClosed bool
	}{
		{name: "not yet idle long enough", idleMs: idle.Milliseconds(), run: idle - time.Second},
		{name: "idle past the setting", idleMs: idle.Milliseconds(), run: idle + idle/10 + time.Second, wantClosed: true},
		{name: "steady traffic", idleMs: idle.Milliseconds(), traffic: idle / 2, run: 5 * idle},
		{name: "disabled", idleMs: -1, run: 100 * idle},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			h := newConnHarness(t, func(c *Config) { c.ConnectionsMaxIdleMs = test.idleMs })
			c := h.dial(t, "a")
			for elapsed := time.Duration(0); elapsed < test.run; {
				step := test.run - elapsed
				if test.traffic > 0 {
					step = min(step, test.traffic)
					c.conn.Send(encodeRequest(newAPIVersionsRequest(), 1))
				}
				if err := h.sched.RunFor(step); err != nil {
					t.Fatal(err)
				}
				elapsed += step
			}
			if c.closed != test.wantClosed {
				t.Fatalf("closed %v after %v, want %v", c.closed, test.run, test.wantClosed)
			}
			m := h.node.Metrics().Connections
			if test.wantClosed != (m.ClosedIdle == 1) {
				t.Errorf("idle closes counted %d", m.ClosedIdle)
			}
			if test.wantClosed != (len(h.logLines("closing idle connection")) == 1) {
				t.Errorf("idle log lines %q", h.logLines("closing idle connection"))
			}
		})
	}
}

// TestConnectionsMaxIdleSparesParkedRequests parks a fetch that waits
// longer than connections.max.idle.ms and checks that its connection is
// not closed as idle while the request is in progress.
func TestConnectionsMaxIdleSparesParkedRequests(t *testing.T) {
	h := newConnHarness(t, func(c *Config) { c.ConnectionsMaxIdleMs = 1000 })
	c := h.dial(t, "a")
	h.createTopic(t, c, "idle")
	fetch := newFetchRequest("idle", 0)
	fetch.MaxWaitMillis = 5000 // longer than the idle setting
	fetch.MinBytes = 1
	before := len(c.frames)
	c.conn.Send(encodeRequest(fetch, 2))
	if err := h.sched.RunFor(4 * time.Second); err != nil {
		t.Fatal(err)
	}
	if c.closed || len(c.frames) != before {
		t.Fatalf("parked fetch: closed %v, %d answers, want open and unanswered", c.closed, len(c.frames)-before)
	}
	if err := h.sched.RunFor(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if len(c.frames) != before+1 {
		t.Fatalf("fetch not answered after its wait (closed %v)", c.closed)
	}
}

// TestMalformedConnectionLogIsRateLimited closes many connections for
// garbage frames within one interval and checks that at most
// connLogLinesMax lines are logged, followed by one line counting the rest
// when the interval ends, while the counter sees every one.
func TestMalformedConnectionLogIsRateLimited(t *testing.T) {
	const connections = connLogLinesMax + 15
	h := newConnHarness(t, nil)
	for i := range connections {
		c := h.dial(t, "a")
		c.conn.Send([]byte{0xff, 0xff, 0xff}) // too short for a request header
		if err := h.sched.RunFor(10 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if !c.closed {
			t.Fatalf("connection %d stayed open after a garbage frame", i)
		}
	}
	if lines := h.logLines(`msg="closing connection after a malformed request"`); len(lines) != connLogLinesMax {
		t.Fatalf("%d malformed lines in the first interval, want %d:\n%s", len(lines), connLogLinesMax, h.log)
	}
	if err := h.sched.RunFor(connLogInterval); err != nil {
		t.Fatal(err)
	}
	summary := h.logLines("suppressed similar log lines")
	if len(summary) != 1 || !strings.Contains(summary[0], "suppressed=15") {
		t.Fatalf("summary lines %q, want one with suppressed=15", summary)
	}
	if got := h.node.Metrics().Connections.ClosedMalformed; got != connections {
		t.Errorf("ClosedMalformed %d, want %d", got, connections)
	}
	// A new interval logs again.
	c := h.dial(t, "b")
	c.conn.Send([]byte{0xff})
	if err := h.sched.RunFor(10 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if lines := h.logLines(`msg="closing connection after a malformed request"`); len(lines) != connLogLinesMax+1 {
		t.Errorf("%d malformed lines after the interval, want %d", len(lines), connLogLinesMax+1)
	}
}

// TestConnectionClosedByNetworkForOversizedFrameIsLogged stands in for the
// network closing a connection whose client announced a frame above
// socket.request.max.bytes: OnClose with an error that is not a reset is
// logged and counted as malformed, a reset is not.
func TestConnectionClosedByNetworkForOversizedFrameIsLogged(t *testing.T) {
	h := newConnHarness(t, nil)
	for _, err := range []error{core.ErrConnReset, errFrameTooLargeForTest} {
		c := &conn{node: h.node, id: 99, net: &captureConn{}}
		h.node.conns[c.id] = c
		c.OnClose(c.net, err)
	}
	if got := h.node.Metrics().Connections.ClosedMalformed; got != 1 {
		t.Errorf("ClosedMalformed %d, want 1 (the oversized frame, not the reset)", got)
	}
	if lines := h.logLines("frame size out of range"); len(lines) != 1 {
		t.Errorf("log lines %q, want one naming the oversized frame", lines)
	}
}

// errFrameTooLargeForTest is what the TCP network reports for a frame
// above socket.request.max.bytes (net.ErrFrameTooLarge, which this package
// may not import).
var errFrameTooLargeForTest = errors.New("net: frame of 2147483647 bytes from client:1, limit 104857600: frame size out of range")

func newAPIVersionsRequest() *kmsg.ApiVersionsRequest {
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "test", "1"
	return req
}

func newFetchRequest(topic string, partition int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(11)
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.PartitionMaxBytes = 1 << 20
	rp.CurrentLeaderEpoch = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// createTopic creates a one-partition topic through client connection c.
func (h *connHarness) createTopic(t *testing.T, c *clientConn, name string) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(5)
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
	req.Topics = append(req.Topics, rt)
	before := len(c.frames)
	c.conn.Send(encodeRequest(req, 1))
	if err := h.sched.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if len(c.frames) != before+1 || h.node.catalog.partition(name, 0) == nil {
		t.Fatalf("create %s: %d answers, topic exists %v", name, len(c.frames)-before, h.node.catalog.partition(name, 0) != nil)
	}
}

// TestStorageErrorLogIsRateLimited fills the disk and sends many produce
// requests, each failing with KAFKA_STORAGE_ERROR: at most connLogLinesMax
// "storage error" lines are logged per interval, then one line counting
// the rest, while every request still gets its error; once space is freed
// the partition takes writes again. A full disk with a few retrying
// producers once logged ten lines a second per producer.
func TestStorageErrorLogIsRateLimited(t *testing.T) {
	const requests = connLogLinesMax + 15
	b := newSimBroker(t, 1, nil)
	createTopic(t, b, "full", 1)
	var log bytes.Buffer
	b.node.log = slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	b.disk.SetCapacity(b.disk.UsedBytes())
	for i := range requests {
		resp := b.roundTrip(t, produceRequest(t, "full", 0, 1, record.NewBatchSpec(record.CodecNone), fmt.Sprint("v", i))).(*kmsg.ProduceResponse)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.KafkaStorageError.Code {
			t.Fatalf("produce %d on a full disk: %v, want KAFKA_STORAGE_ERROR", i, kerr.ErrorForCode(code))
		}
	}
	count := func(text string) int { return strings.Count(log.String(), text) }
	if got := count(`msg="storage error"`); got != connLogLinesMax {
		t.Fatalf("%d storage error lines for %d failed appends, want %d:\n%s", got, requests, connLogLinesMax, log.String())
	}
	if err := b.sched.RunFor(connLogInterval); err != nil {
		t.Fatal(err)
	}
	if got := count(`msg="suppressed similar log lines" like="storage error" suppressed=15`); got != 1 {
		t.Fatalf("want one line counting the 15 suppressed storage errors:\n%s", log.String())
	}
	// Space freed, the partition takes writes again.
	b.disk.SetCapacity(b.disk.UsedBytes() + 1<<20)
	resp := b.roundTrip(t, produceRequest(t, "full", 0, 1, record.NewBatchSpec(record.CodecNone), "after")).(*kmsg.ProduceResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce once space is freed: %v", kerr.ErrorForCode(code))
	}
}
