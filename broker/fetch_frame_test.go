package broker

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core/record"
)

// TestFetchFrameMatchesKmsg checks the hand encoding of Fetch responses
// against kmsg's, byte for byte, for every version the broker answers:
// partitions with no data, with record bytes whose compact length is
// shorter, equal to and longer than the prefix reserved for them, and
// with an error, and (flexible versions) with a DivergingEpoch for a
// follower; topics by name, or by id from version 13.
func TestFetchFrameMatchesKmsg(t *testing.T) {
	type partitionCase struct {
		dataBytes, reservedFor int
		code                   int16
		diverging              divergingEpoch
	}
	partitions := []partitionCase{
		{dataBytes: 0, reservedFor: 1 << 20},
		{dataBytes: 10, reservedFor: 1 << 20}, // prefix shrinks by two bytes
		{dataBytes: 200, reservedFor: 100},    // prefix grows by one byte
		{dataBytes: 300, reservedFor: 1000},   // prefix as reserved
		{code: kerr.OffsetOutOfRange.Code},
		{dataBytes: 70_000, reservedFor: 1 << 20},
		{dataBytes: 0, reservedFor: 1 << 20, diverging: divergingEpoch{set: true, epoch: 7, endOffset: 1234}},
	}
	for version := int16(4); version <= 15; version++ {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			want := kmsg.NewPtrFetchResponse()
			want.SetVersion(version)
			var f fetchFrame
			f.begin(make([]byte, 0, 16), version, 77, 0, 2)
			for n, topic := range []string{"alpha", "b"} {
				st := kmsg.NewFetchResponseTopic()
				id := [16]byte{byte(n + 1), 2, 3}
				if version >= fetchTopicIDVersionMin {
					st.TopicID = id
				} else {
					st.Topic = topic
				}
				f.beginTopic(topic, id, len(partitions))
				for i, pc := range partitions {
					if pc.diverging.set && version < fetchFlexibleVersionMin {
						pc.diverging = divergingEpoch{} // not in the version
					}
					sp := kmsg.NewFetchResponseTopicPartition()
					sp.Partition = int32(i)
					if pc.code != 0 {
						sp.ErrorCode = pc.code
						sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
						sp.RecordBatches = []byte{}
						f.beginPartitionError(int32(i), pc.code)
					} else {
						data := bytes.Repeat([]byte{byte(i + 1)}, pc.dataBytes)
						sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = 1000+int64(i), 1000+int64(i), 3
						sp.RecordBatches = data
						prefixAt := f.beginPartition(fetchPartitionHeader{partition: int32(i),
							highWatermark: 1000 + int64(i), lastStable: 1000 + int64(i), logStartOffset: 3}, pc.reservedFor)
						reserved := len(f.buf) - prefixAt
						f.buf = append(f.buf, data...)
						if pc.diverging.set {
							sp.DivergingEpoch.Epoch, sp.DivergingEpoch.EndOffset = pc.diverging.epoch, pc.diverging.endOffset
						}
						f.endPartition(prefixAt, reserved, pc.diverging)
					}
					st.Partitions = append(st.Partitions, sp)
				}
				f.endTopic()
				want.Topics = append(want.Topics, st)
			}
			got := f.end()
			if wantFrame := appendResponse(nil, 77, want); !bytes.Equal(got, wantFrame) {
				t.Fatalf("frame differs from kmsg's (%d bytes, want %d)", len(got), len(wantFrame))
			}
		})
	}
}

// trackedConn is a core.Conn that reports every frame written as soon as
// it is sent, like a TCP connection whose writer keeps up; it keeps the
// last frame.
type trackedConn struct {
	captureConn
	last   []byte
	queued uint64
}

func (c *trackedConn) Send(frame []byte)     { c.last = frame; c.queued++ }
func (c *trackedConn) FramesQueued() uint64  { return c.queued }
func (c *trackedConn) FramesWritten() uint64 { return c.queued }

// steadyFetch is a broker with data in topic "t" and a connection over a
// trackedConn, and the Fetch request a consumer that is behind would send.
type steadyFetch struct {
	broker  *simBroker
	conn    *conn
	wire    *trackedConn
	request *request
	fetch   *kmsg.FetchRequest
}

func newSteadyFetch(t *testing.T, version int16) *steadyFetch {
	b := newSimBroker(t, 1, func(c *Config) { c.AutoCreateTopics = true })
	createTopic(t, b, "t", 1)
	values := make([]string, 50)
	for i := range values {
		values[i] = string(bytes.Repeat([]byte{'v'}, 1000))
	}
	for range 20 {
		if code, _ := produceCode(t, b, produceRequest(t, "t", 0, -1, record.NewBatchSpec(record.CodecNone), values...)); code != 0 {
			t.Fatalf("produce: error %d", code)
		}
	}
	wire := &trackedConn{}
	c := &conn{node: b.node, id: 50, net: wire}
	b.node.conns[c.id] = c
	fr := kmsg.NewPtrFetchRequest()
	fr.SetVersion(version)
	fr.MaxBytes, fr.MinBytes, fr.MaxWaitMillis = 1<<20, 1, 500
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = 1<<20, -1
	rt.Partitions = append(rt.Partitions, rp)
	fr.Topics = append(fr.Topics, rt)
	r := &request{conn: c, header: requestHeader{apiKey: 1, apiVersion: version, correlationID: 9}}
	return &steadyFetch{broker: b, conn: c, wire: wire, request: r, fetch: fr}
}

// run answers the fetch once, as the connection would.
func (s *steadyFetch) run() {
	s.request.answered, s.request.ready = false, false
	s.conn.started(s.request)
	handleFetch(s.broker.node, s.request, s.fetch)
}

// TestSteadyFetchAllocatesNothing checks the consume path's steady state:
// a fetch answered at once, over a network that reports its frames
// written, allocates nothing (the frame is reused and the partition is
// read straight into it), and the frame it sends decodes to the stored
// batches.
func TestSteadyFetchAllocatesNothing(t *testing.T) {
	for _, version := range []int16{11, 12} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			s := newSteadyFetch(t, version)
			s.run()
			if allocs := testing.AllocsPerRun(100, s.run); allocs != 0 {
				t.Errorf("%.1f allocations per fetch, want 0", allocs)
			}
			resp := kmsg.NewPtrFetchResponse()
			resp.SetVersion(version)
			frame := s.wire.last[4:]
			if version >= 12 {
				frame = frame[1:]
			}
			if err := resp.ReadFrom(frame); err != nil {
				t.Fatalf("response does not parse: %v", err)
			}
			p := resp.Topics[0].Partitions[0]
			stored, err := s.broker.node.catalog.partition("t", 0).readForFetch(0, 1<<20, true, s.broker.node.catalog.partition("t", 0).highWatermark(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if p.ErrorCode != 0 || p.HighWatermark != 1000 || !bytes.Equal(p.RecordBatches, stored) {
				t.Errorf("partition: error %d, high watermark %d, %d record bytes (want 0, 1000, %d)",
					p.ErrorCode, p.HighWatermark, len(p.RecordBatches), len(stored))
			}
		})
	}
}

// TestFetchFramesReusedOnlyWhenWritten checks that a frame the network has
// not reported written is never reused: the next response goes to another
// slot, and with every slot in flight to a frame of its own.
func TestFetchFramesReusedOnlyWhenWritten(t *testing.T) {
	s := newSteadyFetch(t, 12)
	held := &heldWrites{trackedConn: s.wire}
	s.conn.net = held
	var frames [][]byte
	for range connFrameSlots + 2 {
		s.run()
		frames = append(frames, held.last)
	}
	for i := range frames {
		for j := range i {
			if &frames[i][0] == &frames[j][0] {
				t.Fatalf("responses %d and %d share a frame that was not written", j, i)
			}
		}
	}
	held.written = held.queued
	s.run()
	if &held.last[0] != &frames[0][0] {
		t.Errorf("a written frame was not reused")
	}
}

// heldWrites is a trackedConn whose writer has written only what the test
// says.
type heldWrites struct {
	*trackedConn
	written uint64
}

func (c *heldWrites) FramesWritten() uint64 { return c.written }
