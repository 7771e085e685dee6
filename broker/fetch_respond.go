package broker

import "fmt"

// Fetch responses are encoded into frames the connection reuses (see
// fetch_frame.go for the encoding). A frame handed to the network may be
// written to the socket later, by another goroutine, so it is reused only
// once the network reports it written: networks that can say so implement
// frameTracker (net.TCP does). Over a network that cannot (the simulator,
// whose receiver keeps the frame it is given), every response gets a frame
// of its own, as the core.Conn contract says.

// Bounds on the frames a connection keeps for reuse. A consumer has one
// fetch in flight per broker, so one frame being written and one being
// built is the steady state; the extra slots absorb a client that
// pipelines. A frame larger than connFrameRetainedBytesMax is not kept:
// the bound is twice the largest fetch.max.bytes of common clients (50 MiB
// for Kafka's Java consumer and franz-go), so their responses, however the
// buffer grew, are reused; a connection that goes quiet for an idle sweep
// gives its frames back (sweepIdle).
const (
	connFrameSlots            = 4
	connFrameRetainedBytesMax = 128 << 20
)

// frameTracker is implemented by connections that count the frames they
// queued (on the loop) and the frames their writer has finished writing
// (from any goroutine): once FramesWritten reaches the FramesQueued count
// read right after a frame was sent, the network no longer reads that
// frame's bytes.
type frameTracker interface {
	FramesQueued() uint64
	FramesWritten() uint64
}

// frameSlot is a reusable response frame of a connection.
type frameSlot struct {
	buf []byte
	// ticket is the FramesQueued count right after buf was sent (0 when
	// never sent); buf is free once FramesWritten reaches it.
	ticket uint64
	// held is true while a response is being built in buf.
	held bool
}

// takeFrame returns an empty frame buffer to build a response in, and its
// slot (-1 when the frame is its own: the network cannot report writes,
// or every slot is in use).
func (c *conn) takeFrame() ([]byte, int) {
	tracker, ok := c.net.(frameTracker)
	if !ok {
		return nil, -1
	}
	written := tracker.FramesWritten()
	for i := range c.frames {
		slot := &c.frames[i]
		if !slot.held && slot.ticket <= written {
			slot.held = true
			return slot.buf[:0], i
		}
	}
	return nil, -1
}

// returnFrame gives back a frame from takeFrame that was not sent.
func (c *conn) returnFrame(frame []byte, slot int) {
	if slot < 0 {
		return
	}
	c.keepFrame(slot, frame, 0)
}

func (c *conn) keepFrame(slot int, frame []byte, ticket uint64) {
	s := &c.frames[slot]
	if !s.held {
		panic(fmt.Sprintf("broker: frame slot %d returned twice", slot))
	}
	s.held, s.ticket = false, ticket
	s.buf = frame
	if cap(frame) > connFrameRetainedBytesMax {
		s.buf = nil
	}
}

// sendFrame hands a frame from takeFrame to the network.
func (c *conn) sendFrame(frame []byte, slot int) {
	c.net.Send(frame)
	if slot >= 0 {
		c.keepFrame(slot, frame, c.net.(frameTracker).FramesQueued())
	}
}

// releaseFrames drops the kept frames of an idle or closed connection.
// A frame still being written stays referenced by the network until it
// is, and is then collected.
func (c *conn) releaseFrames() {
	for i := range c.frames {
		if !c.frames[i].held {
			c.frames[i] = frameSlot{}
		}
	}
}

// fetchStats is what a built Fetch response holds for the metrics: the
// partitions' error codes and the records and bytes per topic with data.
// A connection keeps one, reused by every fetch it builds.
type fetchStats struct {
	errorCodes []int16
	topics     []fetchTopicStats
}

type fetchTopicStats struct {
	topic           string
	messages, bytes int64
}

func (s *fetchStats) reset() {
	s.errorCodes, s.topics = s.errorCodes[:0], s.topics[:0]
}

// respondFetch answers the request with a built Fetch response, counting
// it in the metrics as request.respond does for a kmsg response.
func (r *request) respondFetch(built fetchResult) {
	if r.answered {
		panic("broker: Fetch answered twice")
	}
	r.answered = true
	c := r.conn
	if c.closed {
		c.returnFrame(built.frame, built.slot)
		return
	}
	n := c.node
	counters := n.metrics.requestCountersFor(r.header.apiKey)
	counters.latency.observe(n.now().Sub(r.arrived))
	for _, code := range c.fetchStats.errorCodes {
		counters.countError(code)
	}
	for _, t := range c.fetchStats.topics {
		topic := n.metrics.topicCountersFor(t.topic)
		topic.messagesOut += t.messages
		topic.bytesOut += t.bytes
	}
	c.respondFrame(r, built.frame, built.slot)
}
