package broker

import (
	"errors"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core"
)

// Bounds on what one client connection may queue. A Kafka client pipelines a
// handful of requests (max.in.flight.requests.per.connection); a peer that
// queues far more is either broken or hostile, and is disconnected rather
// than allowed to grow the broker's memory without bound.
const (
	connFramesQueuedMax = 1024
	connBytesQueuedMax  = 256 << 20
)

// conn is the broker's side of one client connection.
//
// Kafka processes the requests of one connection strictly in order, one at a
// time: the next request is not read until the previous response was sent.
// Clients rely on it (a Produce followed by a Fetch on the same connection
// sees its own write, and responses arrive in request order). conn keeps that
// rule with a queue of received frames and at most one request in progress.
//
// States: idle (no request in progress), busy (a handler holds the respond
// function of the request at the head), closed (terminal; queued frames are
// dropped, and a late respond is ignored).
type conn struct {
	node *Node
	id   uint64
	net  core.Conn

	queue       [][]byte // received frames not yet started, oldest first
	queuedBytes int
	busy        bool
	closed      bool
	// dispatching is true while processQueue runs, so that a handler that
	// responds synchronously does not recurse into processQueue.
	dispatching bool
	// cancelParked, when set, withdraws the request in progress from
	// whatever it waits on (a long-polling fetch); it runs if the
	// connection closes first.
	cancelParked func()
}

func (c *conn) OnOpen(core.Conn) {}

func (c *conn) OnFrame(_ core.Conn, frame []byte) {
	if c.closed {
		return
	}
	if len(c.queue) >= connFramesQueuedMax || c.queuedBytes+len(frame) > connBytesQueuedMax {
		c.node.log.Warn("closing connection that queued too many requests",
			slog.Uint64("conn", c.id), slog.Int("frames", len(c.queue)), slog.Int("bytes", c.queuedBytes))
		c.close()
		return
	}
	c.queue = append(c.queue, frame)
	c.queuedBytes += len(frame)
	c.processQueue()
}

func (c *conn) OnClose(_ core.Conn, err error) {
	if c.closed {
		return
	}
	c.closed = true
	c.release()
	if err != nil && !errors.Is(err, core.ErrConnReset) {
		c.node.log.Debug("connection closed", slog.Uint64("conn", c.id), slog.Any("err", err))
	}
}

// close closes the connection from our side.
func (c *conn) close() {
	if c.closed {
		return
	}
	c.closed = true
	c.release()
	c.net.Close()
}

func (c *conn) release() {
	c.queue, c.queuedBytes = nil, 0
	if cancel := c.cancelParked; cancel != nil {
		c.cancelParked = nil
		cancel()
	}
	c.node.forgetConn(c)
}

// processQueue starts queued requests while the connection is idle. A
// handler that answers synchronously lets the loop continue with the next
// frame; one that parks the request leaves the connection busy until its
// respond function runs.
func (c *conn) processQueue() {
	if c.dispatching {
		return
	}
	c.dispatching = true
	defer func() { c.dispatching = false }()
	for !c.busy && !c.closed && len(c.queue) > 0 {
		frame := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		c.queuedBytes -= len(frame)
		c.busy = true
		c.node.handleFrame(c, frame)
	}
}

// respond sends resp as the answer to the request in progress and lets the
// connection move on. A nil resp sends nothing (acks=0 produce). It is safe
// to call after the connection closed: the answer is dropped.
func (c *conn) respond(correlationID int32, resp kmsg.Response) {
	if c.closed {
		return
	}
	if !c.busy {
		panic("broker: respond called on a connection with no request in progress")
	}
	if resp != nil {
		c.net.Send(appendResponse(nil, correlationID, resp))
	}
	c.cancelParked = nil
	c.busy = false
	c.processQueue()
}

// park records how to withdraw the request in progress if the connection
// closes before it is answered.
func (c *conn) park(cancel func()) {
	if !c.busy || c.cancelParked != nil {
		panic("broker: park without a request in progress, or parked twice")
	}
	c.cancelParked = cancel
}
