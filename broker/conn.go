package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
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
	// connRequestsInFlightMax bounds the requests of one connection that
	// started and whose answers have not left yet: Produce requests
	// started while earlier ones wait for durability. Kafka's clients keep
	// at most 5 requests in flight per connection, so 8 never holds a
	// well-behaved client back, and the bound caps the parked requests (and
	// the answers held for ordering) that one connection can pin.
	connRequestsInFlightMax = 8
)

// conn is the broker's side of one client connection.
//
// Kafka processes the requests of one connection in order, one at a time:
// its socket server stops reading a connection until the previous response
// was sent. Clients rely on three consequences: responses arrive in request
// order (they match them by position as much as by correlation id); a
// request sees the effects of every request sent before it on the
// connection (a Fetch after a Produce reads the write, an EndTxn after a
// Produce covers it); and an idempotent producer's batches are appended in
// the order it sent them, so the broker's sequence checks see them in that
// order.
//
// Running one request at a time would cost an acks=all Produce a whole
// group-commit fsync per request, because the next request's append could
// not join the sync the previous one waits for. conn therefore lets Produce
// requests pipeline, and keeps the three promises with these rules:
//
//  1. Requests start in arrival order (the queue is first in, first out).
//  2. A request starts when no request of the connection is in flight.
//     Otherwise it starts only if it is a Produce with acks 1 or all
//     (pipelinableProduce), fewer than connRequestsInFlightMax requests are
//     in flight, and every request in flight has either been answered or is
//     a Produce whose appends are done and which only waits for durability
//     (request.pipelined). So a Produce appends after every earlier request
//     took effect, and sequence checks run in request order.
//  3. Every other request (a Fetch, an EndTxn, a Metadata...) waits until
//     nothing is in flight, which is after every earlier answer was sent:
//     a client reads its own acknowledged writes.
//  4. Answers leave in start order, which is request order: an answer
//     ready behind an unanswered request is held (request.response) until
//     the ones before it leave. Each request's latency is counted when its
//     answer leaves, so the hold shows in it.
//  5. acks=0 Produce requests do not pipeline: one that fails closes the
//     connection (Kafka's way to tell such a producer), and that must not
//     drop the answers of earlier requests. A frame that cannot be decoded
//     closes the connection likewise only after the earlier answers left
//     (closeMalformedInOrder).
//  6. Closing the connection withdraws every request in flight exactly
//     once (request.cancel); answers that come later are dropped.
//
// States: idle (nothing in flight), serving (requests in flight, oldest
// first in inFlight), draining (a malformed frame arrived: nothing more
// starts, and the connection closes once inFlight empties), closed
// (terminal; queued frames are dropped, and a late respond is ignored).
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
	closed     bool
	// inFlight are the requests started whose answers have not left yet,
	// in start order (rules 2 and 4 above); at most
	// connRequestsInFlightMax.
	inFlight []*request
	// drainError, when set, is why the connection closes once inFlight
	// empties (a malformed frame behind pipelined requests).
	drainError error
	// dispatching is true while processQueue runs, so that a handler that
	// responds synchronously does not recurse into processQueue.
	dispatching bool
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
	c.node.metrics.connections.closed++
	inFlight := c.inFlight
	c.inFlight = nil
	for _, r := range inFlight {
		// A held answer's frame goes back to its slot; the request is
		// withdrawn from whatever it waits on, once.
		if r.response != nil {
			c.returnFrame(r.response, r.slot)
			r.response = nil
		}
		if cancel := r.cancel; cancel != nil {
			r.cancel = nil
			cancel()
		}
	}
	c.releaseFrames()
	c.node.forgetConn(c)
}

// processQueue starts queued requests while the ordering rules allow (see
// conn). A handler that answers synchronously lets the loop continue with
// the next frame; one that parks its request leaves it in flight until its
// respond function runs.
func (c *conn) processQueue() {
	if c.dispatching {
		return
	}
	c.dispatching = true
	defer func() { c.dispatching = false }()
	for !c.closed && c.drainError == nil && len(c.queue) > 0 && c.mayStart(c.queue[0]) {
		frame, arrived := c.queue[0], c.arrivals[0]
		c.queue[0] = nil
		c.queue, c.arrivals = c.queue[1:], c.arrivals[1:]
		c.queuedBytes -= len(frame)
		inFlightBefore := len(c.inFlight)
		c.node.handleFrame(c, frame, arrived)
		assert(c.closed || c.drainError != nil || len(c.inFlight) <= inFlightBefore+1,
			"a handler started more than one request")
		c.recycleProduceFrame(frame)
	}
}

// recycleProduceFrame hands the frame of a Produce request back to the
// network once handleFrame has returned, so that the network reads a later
// request into it instead of allocating and zeroing a new frame
// (core.FrameRecycler; docs/performance.md, "Recycled produce frames"). A
// network that cannot reuse frames (the simulator) does not implement it,
// and the broker's behaviour is the same either way.
//
// The frame must be dead: nothing may reference its bytes once recycled,
// since the network overwrites them with the next request, from its reader
// goroutine, while the node runs. For a Produce frame this holds as soon as
// handleFrame returns, whatever the request's fate (answered, parked in the
// purgatory, refused, the connection closed), because of what a Produce
// request's bytes become:
//
//   - decodeRequest uses kmsg's ReadFrom, not UnsafeReadFrom: the client id,
//     transactional id and topic names are copied into strings of their
//     own. Only []byte fields alias the frame: each partition's Records and
//     the raw bytes of unknown tagged fields, all inside the decoded
//     kmsg.ProduceRequest, which handleProduce alone receives.
//   - handleProduce uses the request only while it runs. Every partition's
//     Records go through producePartition to partition.append, all of it
//     synchronous: record.Validate reads them; the producer table keeps
//     header values only (record.Header has no slices); a duplicate answers
//     offsets from that table; compressForTopic's record.Recompress reads
//     them and returns a new batch (its compressors copy their input into
//     their own buffers, and the shared zstd decoder drops its references
//     when it returns); SetMaxTimestampLogAppend, SetBaseOffset and
//     SetPartitionLeaderEpoch stamp them in place; the log writes them with
//     core.File.Write, whose contract is that it does not retain them (the
//     real disk copies into the kernel, the simulated disk into its own
//     array); metrics.produced counts len(Records) only. Errors are
//     formatted strings, and no log line carries the bytes.
//   - What outlives handleProduce holds none of it: the response (built
//     fresh, with copied topic names and formatted error messages), the
//     purgatory's produceWaiter (the response, partitions and offsets) and
//     the request (its header, with the copied client id). acks=0 answers
//     nothing and may close the connection; a request withdrawn when the
//     connection closes cancels only the waiter.
//   - A frame that does not decode, or that arrives on a controller
//     listener (which has no Produce), is refused with a formatted error.
//
// Frames of other requests are never recycled: JoinGroup and SyncGroup
// metadata, for one, alias their frame and live on in the group's state.
// Whoever makes part of the produce path asynchronous (an append as an I/O
// effect, a batch kept for replication) must move this call to where the
// bytes are last read, or drop it.
func (c *conn) recycleProduceFrame(frame []byte) {
	recycler, ok := c.net.(core.FrameRecycler)
	if !ok || len(frame) < 2 || int16(binary.BigEndian.Uint16(frame)) != int16(kmsg.Produce) {
		return
	}
	recycler.RecycleFrame(frame)
}

// mayStart reports whether the request in frame may start now (rule 2 of
// conn).
func (c *conn) mayStart(frame []byte) bool {
	if len(c.inFlight) == 0 {
		return true
	}
	if len(c.inFlight) >= connRequestsInFlightMax || !pipelinableProduce(frame) {
		return false
	}
	for _, r := range c.inFlight {
		if !r.pipelined && !r.ready {
			return false
		}
	}
	return true
}

// pipelinableProduce reports whether frame is a Produce request with acks 1
// or all (-1), reading only as far as its acks field; anything it cannot
// read is not pipelinable, and waits to be decoded (and refused) in turn.
// The fields before acks: the request header (api key, version,
// correlation id, client id, and tags from the first flexible version),
// then, from version 3, the transactional id.
func pipelinableProduce(frame []byte) bool {
	reader := kbin.Reader{Src: frame}
	if reader.Int16() != int16(kmsg.Produce) {
		return false
	}
	header := kmsg.ProduceRequest{Version: reader.Int16()}
	reader.Int32()
	reader.NullableString()
	if header.IsFlexible() {
		kmsg.SkipTags(&reader)
	}
	switch {
	case header.Version >= 3 && header.IsFlexible():
		reader.CompactNullableString()
	case header.Version >= 3:
		reader.NullableString()
	}
	acks := reader.Int16()
	return reader.Ok() && (acks == 1 || acks == -1)
}

// started registers a request whose handler is about to run; handleFrame
// calls it once per decoded request.
func (c *conn) started(r *request) {
	assert(!c.closed && len(c.inFlight) < connRequestsInFlightMax, "request started past the in-flight bound")
	for _, earlier := range c.inFlight {
		assert(earlier.pipelined || earlier.ready, "request started behind one still running")
	}
	c.inFlight = append(c.inFlight, r)
}

// respond answers r with resp, which leaves once the requests before it
// have been answered (rule 4 of conn), and lets the connection move on. A
// nil resp sends nothing (acks=0 produce). It is safe to call after the
// connection closed: the answer is dropped.
func (c *conn) respond(r *request, resp kmsg.Response) {
	if c.closed {
		return
	}
	r.response, r.slot = nil, -1
	if resp != nil {
		r.response = appendResponse(nil, r.header.correlationID, resp)
	}
	r.countAtSend, r.answer = true, resp
	c.requestDone(r)
}

// respondFrame is respond for a response already encoded into frame, from
// the connection's frame slot (see takeFrame), whose metrics the caller
// counted. Only a Fetch answers this way, and a Fetch runs alone (rule 3
// of conn), so its answer leaves at once and the latency counted is the
// one the client sees. On a closed connection the frame goes back to its
// slot.
func (c *conn) respondFrame(r *request, frame []byte, slot int) {
	if c.closed {
		c.returnFrame(frame, slot)
		return
	}
	assert(len(c.inFlight) > 0 && c.inFlight[0] == r, "a frame-slot answer would wait behind an earlier request")
	r.response, r.slot = frame, slot
	c.requestDone(r)
}

// requestDone marks r answered, sends every answer ready at the head of
// inFlight, and lets the connection move on.
func (c *conn) requestDone(r *request) {
	assert(slices.Contains(c.inFlight, r), "respond called for a request not in flight")
	assert(!r.ready, "request answered twice")
	r.ready, r.cancel = true, nil
	for len(c.inFlight) > 0 && c.inFlight[0].ready {
		head := c.inFlight[0]
		// Shift rather than reslice, so that the slice's storage is
		// reused and a steady connection allocates nothing.
		copy(c.inFlight, c.inFlight[1:])
		c.inFlight[len(c.inFlight)-1] = nil
		c.inFlight = c.inFlight[:len(c.inFlight)-1]
		c.send(head)
	}
	c.active = true
	if c.drainError != nil && len(c.inFlight) == 0 {
		c.closeMalformed(c.drainError)
		return
	}
	c.processQueue()
}

// send puts r's answer on the wire (none for acks=0) and counts its
// latency, from arrival to now, and its error codes.
func (c *conn) send(r *request) {
	if r.countAtSend {
		n := c.node
		n.metrics.requestAnswered(r.header.apiKey, r.answer, n.now().Sub(r.arrived))
		r.countAtSend, r.answer = false, nil
	}
	if r.response != nil {
		c.sendFrame(r.response, r.slot)
		r.response = nil
	}
}

// closeMalformedInOrder closes the connection for a frame that cannot be
// decoded, once the answers of the requests before it have left (rule 5
// of conn); nothing more starts meanwhile.
func (c *conn) closeMalformedInOrder(err error) {
	if len(c.inFlight) == 0 {
		c.closeMalformed(err)
		return
	}
	c.drainError = err
}

// park records how to withdraw the request whose handler runs if the
// connection closes before it is answered. That request is the newest in
// flight: rule 2 lets nothing start behind a request still running.
func (c *conn) park(cancel func()) {
	if c.closed {
		// The connection closed while the handler ran: withdraw now, as
		// release would have.
		cancel()
		return
	}
	assert(len(c.inFlight) > 0, "park without a request in flight")
	r := c.inFlight[len(c.inFlight)-1]
	assert(!r.ready && r.cancel == nil && !r.pipelined, "park of an answered request, or parked twice")
	r.cancel = cancel
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
	if c.active || len(c.inFlight) > 0 || len(c.queue) > 0 {
		c.active, c.idleSweeps = false, 0
		return
	}
	// A connection quiet for a whole sweep interval gives its frames back,
	// the response frames it kept and the request frames the network kept.
	c.releaseFrames()
	if recycler, ok := c.net.(core.FrameRecycler); ok {
		recycler.ReleaseRecycledFrames()
	}
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

// logLimiter bounds the log lines of one kind (a kind of connection
// close, storage errors) to connLogLinesMax per connLogInterval of the
// node's clock. The window starts with its first line; when it ends, one
// line reports how many were suppressed.
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
		n.log.Warn("suppressed similar log lines",
			slog.String("like", l.message), slog.Int64("suppressed", l.suppressed),
			slog.Duration("interval", connLogInterval))
	}
	l.lines, l.suppressed, l.window = 0, 0, nil
}
