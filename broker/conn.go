package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

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

	queue       [][]byte    // received frames not yet started, oldest first
	arrivals    []time.Time // when each queued frame arrived, for queue time
	queuedBytes int
	// address is the client's host (RemoteAddr without the port), counted
	// against max.connections.per.ip; empty for a connection that did not
	// come through accept (tests feed some directly).
	address string
	// active is set by traffic (a frame in, a response out) and cleared by
	// the idle sweep; idleSweeps counts the sweeps since it was last set.
	active     bool
	idleSweeps int
	busy       bool
	closed     bool
	// dispatching is true while processQueue runs, so that a handler that
	// responds synchronously does not recurse into processQueue.
	dispatching bool
	// cancelParked, when set, withdraws the request in progress from
	// whatever it waits on (a long-polling fetch); it runs if the
	// connection closes first.
	cancelParked func()
	// frames are the response frames kept for reuse, and fetchStats the
	// metrics of the Fetch response being built (fetch_respond.go).
	frames     [connFrameSlots]frameSlot
	fetchStats fetchStats
	// controlPlane marks a connection accepted on a controller listener.
	controlPlane bool
}

func (c *conn) OnOpen(core.Conn) {}

func (c *conn) OnFrame(_ core.Conn, frame []byte) {
	if c.closed {
		return
	}
	if len(c.queue) >= connFramesQueuedMax || c.queuedBytes+len(frame) > connBytesQueuedMax {
		c.closeMalformed(fmt.Errorf("queued too many requests (%d frames, %d bytes)", len(c.queue), c.queuedBytes))
		return
	}
	c.active = true
	c.queue = append(c.queue, frame)
	c.arrivals = append(c.arrivals, c.node.now())
	c.queuedBytes += len(frame)
	c.processQueue()
}

func (c *conn) OnClose(_ core.Conn, err error) {
	if c.closed {
		return
	}
	if err != nil && !errors.Is(err, core.ErrConnReset) {
		// The network closed the connection for what the client sent (a
		// frame above socket.request.max.bytes, a negative size) or could
		// not take (a full send queue): not a plain hang-up.
		c.node.connections.malformed(c, err)
	}
	c.closed = true
	c.release()
}

// closeMalformed closes the connection after the client sent what the
// broker cannot take, with a rate-limited log line.
func (c *conn) closeMalformed(err error) {
	if c.closed {
		return
	}
	c.node.connections.malformed(c, err)
	c.close()
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
	c.queue, c.arrivals, c.queuedBytes = nil, nil, 0
	c.releaseFrames()
	c.node.metrics.connections.closed++
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
		frame, arrived := c.queue[0], c.arrivals[0]
		c.queue[0] = nil
		c.queue, c.arrivals = c.queue[1:], c.arrivals[1:]
		c.queuedBytes -= len(frame)
		c.busy = true
		c.node.handleFrame(c, frame, arrived)
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
	c.requestDone()
}

// respondFrame is respond for a response already encoded into frame, from
// the connection's frame slot (see takeFrame). On a closed connection the
// frame goes back to its slot.
func (c *conn) respondFrame(frame []byte, slot int) {
	if c.closed {
		c.returnFrame(frame, slot)
		return
	}
	if !c.busy {
		panic("broker: respond called on a connection with no request in progress")
	}
	c.sendFrame(frame, slot)
	c.requestDone()
}

// requestDone lets the connection move on to its next request.
func (c *conn) requestDone() {
	c.active = true
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

// Bounds on the log lines about connections: each kind (malformed frames,
// refusals, idle closes) logs at most connLogLinesMax lines per
// connLogInterval, then one line with the count of those suppressed, so a
// flood of bad clients cannot bury the log or slow the loop.
const (
	connLogLinesMax = 10
	connLogInterval = time.Minute
	// idleSweepsPerTimeout is how many idle sweeps make up
	// connections.max.idle.ms: a sweep runs every tenth of it, so an idle
	// connection closes between 1 and 1.1 times the setting after its last
	// traffic.
	idleSweepsPerTimeout = 10
)

// connBookkeeping is the node's view of its client connections beyond the
// connections themselves: the count per client address (for
// max.connections.per.ip), the idle sweep and the rate-limited log lines.
type connBookkeeping struct {
	node       *Node
	perAddress map[string]int
	idleTimer  core.Timer
	// Rate limits of the log lines, one per kind.
	malformedLog, refusedLog, idleLog logLimiter
}

// admit decides whether an accepted connection may stay: it is refused
// (false) when the node already holds max.connections connections, or
// max.connections.per.ip from the same client address.
func (b *connBookkeeping) admit(c *conn) bool {
	n := b.node
	address := addressHost(c.net.RemoteAddr())
	switch {
	case int64(len(n.conns)) >= int64(n.cfg.ConnectionsMax):
		n.metrics.connections.refusedMaxConnections++
		b.refusedLog.log(n, slog.LevelWarn, "refusing connection: max.connections reached",
			slog.String("client", c.net.RemoteAddr()), slog.Int("open", len(n.conns)),
			slog.Int("max.connections", int(n.cfg.ConnectionsMax)))
		return false
	case b.perAddress[address] >= int(n.cfg.ConnectionsPerAddressMax):
		n.metrics.connections.refusedPerAddress++
		b.refusedLog.log(n, slog.LevelWarn, "refusing connection: max.connections.per.ip reached",
			slog.String("client", c.net.RemoteAddr()), slog.Int("open", b.perAddress[address]),
			slog.Int("max.connections.per.ip", int(n.cfg.ConnectionsPerAddressMax)))
		return false
	}
	if b.perAddress == nil {
		b.perAddress = make(map[string]int)
	}
	b.perAddress[address]++
	c.address = address
	n.metrics.connections.accepted++
	return true
}

// forget drops a closed connection from the count of its address.
func (b *connBookkeeping) forget(c *conn) {
	if c.address == "" {
		return
	}
	b.perAddress[c.address]--
	if b.perAddress[c.address] <= 0 {
		delete(b.perAddress, c.address)
	}
	c.address = ""
}

// malformed counts and logs a connection closed for what its client sent.
func (b *connBookkeeping) malformed(c *conn, err error) {
	b.node.metrics.connections.closedMalformed++
	b.malformedLog.log(b.node, slog.LevelWarn, "closing connection after a malformed request",
		slog.Uint64("conn", c.id), slog.String("client", c.net.RemoteAddr()), slog.Any("err", err))
}

// scheduleIdleSweep arms the next idle sweep, unless
// connections.max.idle.ms is -1.
func (b *connBookkeeping) scheduleIdleSweep() {
	n := b.node
	if n.cfg.ConnectionsMaxIdleMs <= 0 {
		return
	}
	interval := max(time.Duration(n.cfg.ConnectionsMaxIdleMs)*time.Millisecond/idleSweepsPerTimeout, time.Millisecond)
	b.idleTimer = n.env.Clock.AfterFunc(interval, func() {
		if n.stopped {
			return
		}
		for _, id := range n.sortedConnIDs() {
			b.sweepIdle(n.conns[id])
		}
		b.scheduleIdleSweep()
	})
}

// stop cancels the idle sweep.
func (b *connBookkeeping) stop() {
	if b.idleTimer != nil {
		b.idleTimer.Stop()
	}
}

// sweepIdle closes c once it saw no traffic and had no request in progress
// or queued for idleSweepsPerTimeout sweeps in a row. A parked request (a
// long-polling fetch, an acks=all produce) keeps its connection open.
func (b *connBookkeeping) sweepIdle(c *conn) {
	if c.active || c.busy || len(c.queue) > 0 {
		c.active, c.idleSweeps = false, 0
		return
	}
	// A connection quiet for a whole sweep interval gives its frames back.
	c.releaseFrames()
	c.idleSweeps++
	if c.idleSweeps < idleSweepsPerTimeout {
		return
	}
	n := b.node
	n.metrics.connections.closedIdle++
	b.idleLog.log(n, slog.LevelInfo, "closing idle connection",
		slog.Uint64("conn", c.id), slog.String("client", c.net.RemoteAddr()),
		slog.Int64("connections.max.idle.ms", n.cfg.ConnectionsMaxIdleMs))
	c.close()
}

// addressHost is the host part of a "host:port" address ("[::1]:9092"
// gives "::1"); an address without a port is its own host.
func addressHost(address string) string {
	host := address
	if i := strings.LastIndexByte(address, ':'); i >= 0 && !strings.HasSuffix(address[:i], ":") {
		host = address[:i]
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

// logLimiter bounds the log lines of one kind to connLogLinesMax per
// connLogInterval of the node's clock. The window starts with its first
// line; when it ends, one line reports how many were suppressed.
type logLimiter struct {
	lines      int
	suppressed int64
	message    string
	window     core.Timer
}

// log writes one line through the node's logger, unless this window's
// lines are used up.
func (l *logLimiter) log(n *Node, level slog.Level, message string, attrs ...slog.Attr) {
	if l.window == nil {
		l.message = message
		l.window = n.env.Clock.AfterFunc(connLogInterval, func() { l.endWindow(n) })
	}
	if l.lines >= connLogLinesMax {
		l.suppressed++
		return
	}
	l.lines++
	n.log.LogAttrs(context.Background(), level, message, attrs...)
}

// endWindow reports the lines suppressed in the window that ends.
func (l *logLimiter) endWindow(n *Node) {
	if l.suppressed > 0 {
		n.log.Warn("suppressed similar connection log lines",
			slog.String("like", l.message), slog.Int64("suppressed", l.suppressed),
			slog.Duration("interval", connLogInterval))
	}
	l.lines, l.suppressed, l.window = 0, 0, nil
}
