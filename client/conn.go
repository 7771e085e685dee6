package client

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/kafkasim/kafkasim/core"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// connState is the life cycle of a brokerConn.
type connState uint8

const (
	// connIdle: no connection and none wanted yet.
	connIdle connState = iota
	// connDialing: Dial was called; waiting for OnOpen or OnClose.
	connDialing
	// connHandshaking: open; the ApiVersions request is outstanding.
	connHandshaking
	// connReady: requests flow.
	connReady
	// connBackoff: the last connection failed; redial when the timer fires.
	connBackoff
	// connClosed: closed for good by its owner.
	connClosed
)

// call is one request on a brokerConn, from enqueue to completion.
type call struct {
	req     kmsg.Request
	done    func(kmsg.Response, error)
	timeout time.Duration
	timer   core.Timer
	// correlation is assigned when the request is sent.
	correlation int32
	sent        bool
	finished    bool
	// noResponse marks a Produce request with acks=0: the broker sends no
	// response, so the call completes as soon as it is sent.
	noResponse bool
}

// brokerConn is the one connection of a Cluster to one broker address. It
// queues requests until the handshake has chosen the API versions, keeps up
// to inflightRequestsMax of them outstanding, and fails them all when the
// connection breaks.
type brokerConn struct {
	cluster *Cluster
	addr    string
	state   connState
	conn    core.Conn
	// generation increments with every dial, so that callbacks of an older
	// connection are recognised and ignored.
	generation uint64
	versions   brokerVersions
	// handshakeVersion is the ApiVersions version of the current attempt and
	// handshakeAttempts counts the attempts on this connection.
	handshakeVersion  int16
	handshakeAttempts int
	handshakeCorr     int32
	correlationNext   int32
	inflight          []*call
	queue             []*call
	// failures counts consecutive failed connections, for the backoff.
	failures     int
	backoffTimer core.Timer
	// setupTimer fails the current connection if it is not ready within
	// the connection setup timeout: without it, a handshake whose answer
	// the network dropped would hold every queued request forever (sim
	// seed 1401422).
	setupTimer core.Timer
}

// connHandler routes the events of one dialed connection to its brokerConn.
type connHandler struct {
	bc         *brokerConn
	generation uint64
}

func (h connHandler) current() bool {
	return h.bc.generation == h.generation && h.bc.state != connClosed
}

// OnOpen implements core.ConnHandler.
func (h connHandler) OnOpen(c core.Conn) {
	if h.current() {
		h.bc.onOpen()
	}
}

// OnFrame implements core.ConnHandler.
func (h connHandler) OnFrame(c core.Conn, frame []byte) {
	if h.current() {
		h.bc.onFrame(frame)
	}
}

// OnClose implements core.ConnHandler.
func (h connHandler) OnClose(c core.Conn, err error) {
	if h.current() {
		if err == nil {
			err = core.ErrConnReset
		}
		h.bc.fail(err)
	}
}

func newBrokerConn(cluster *Cluster, addr string) *brokerConn {
	return &brokerConn{cluster: cluster, addr: addr, versions: newBrokerVersions()}
}

// enqueue adds a request; done is called exactly once, later, on the loop.
func (bc *brokerConn) enqueue(req kmsg.Request, timeout time.Duration, done func(kmsg.Response, error)) {
	c := &call{req: req, done: done, timeout: timeout}
	if pr, ok := req.(*kmsg.ProduceRequest); ok && pr.Acks == 0 {
		c.noResponse = true
	}
	if bc.state == connClosed {
		bc.finishLater(c, nil, errNotSent(ErrClosed))
		return
	}
	if len(bc.queue) >= queuedRequestsMax {
		bc.finishLater(c, nil, errNotSent(ErrTooManyRequests))
		return
	}
	c.timer = bc.cluster.env.Clock.AfterFunc(timeout, func() { bc.onTimeout(c) })
	bc.queue = append(bc.queue, c)
	switch bc.state {
	case connIdle:
		bc.dial()
	case connReady:
		bc.pump()
	}
}

// finish completes c now. It must not be called from inside enqueue, whose
// caller expects done to run later.
func (bc *brokerConn) finish(c *call, resp kmsg.Response, err error) {
	if c.finished {
		panic("client: call finished twice")
	}
	c.finished = true
	if c.timer != nil {
		c.timer.Stop()
	}
	c.done(resp, err)
}

// finishLater completes c as a separate event, so that done never runs
// inside the call that enqueued it.
func (bc *brokerConn) finishLater(c *call, resp kmsg.Response, err error) {
	if c.finished {
		panic("client: call finished twice")
	}
	c.finished = true
	if c.timer != nil {
		c.timer.Stop()
	}
	bc.cluster.env.Clock.AfterFunc(0, func() { c.done(resp, err) })
}

func (bc *brokerConn) dial() {
	if bc.state != connIdle {
		panic(fmt.Sprintf("client: dial in state %d", bc.state))
	}
	bc.generation++
	bc.state = connDialing
	bc.handshakeAttempts = 0
	bc.handshakeVersion = clientVersions[keyApiVersions].max
	generation := bc.generation
	bc.setupTimer = bc.cluster.env.Clock.AfterFunc(bc.cluster.cfg.ConnectionSetupTimeout, func() {
		if bc.generation == generation && (bc.state == connDialing || bc.state == connHandshaking) {
			bc.fail(ErrConnectionSetupTimeout)
		}
	})
	bc.conn = bc.cluster.env.Net.Dial(bc.addr, connHandler{bc: bc, generation: bc.generation})
}

// stopSetupTimer cancels the setup timeout of the current connection.
func (bc *brokerConn) stopSetupTimer() {
	if bc.setupTimer != nil {
		bc.setupTimer.Stop()
		bc.setupTimer = nil
	}
}

func (bc *brokerConn) onOpen() {
	if bc.state != connDialing {
		panic(fmt.Sprintf("client: OnOpen in state %d", bc.state))
	}
	bc.state = connHandshaking
	bc.sendHandshake()
}

// sendHandshake sends ApiVersions at bc.handshakeVersion. It is the first
// request on every connection.
func (bc *brokerConn) sendHandshake() {
	bc.handshakeAttempts++
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(bc.handshakeVersion)
	req.ClientSoftwareName = "kafkasim-client"
	req.ClientSoftwareVersion = "0.1.0"
	bc.handshakeCorr = bc.nextCorrelation()
	bc.conn.Send(bc.cluster.encode(req, bc.handshakeCorr))
}

func (bc *brokerConn) nextCorrelation() int32 {
	c := bc.correlationNext
	bc.correlationNext++
	if bc.correlationNext < 0 {
		bc.correlationNext = 0
	}
	return c
}

// onHandshake parses the ApiVersions response. A broker that does not speak
// our ApiVersions version answers v0 with UNSUPPORTED_VERSION and its own
// range (KIP-511); we retry once at that version.
func (bc *brokerConn) onHandshake(body []byte) {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(bc.handshakeVersion)
	err := resp.ReadFrom(body)
	if err != nil && bc.handshakeVersion > 0 {
		// The error response is always encoded as v0.
		resp = kmsg.NewPtrApiVersionsResponse()
		err = resp.ReadFrom(body)
	}
	if err != nil {
		bc.fail(fmt.Errorf("%w: ApiVersions response: %v", ErrProtocol, err))
		return
	}
	if resp.ErrorCode == kerr.UnsupportedVersion.Code && bc.handshakeAttempts < apiVersionsAttemptsMax {
		for _, k := range resp.ApiKeys {
			if k.ApiKey == keyApiVersions && k.MaxVersion < bc.handshakeVersion && k.MaxVersion >= 0 {
				bc.handshakeVersion = k.MaxVersion
				bc.sendHandshake()
				return
			}
		}
	}
	if resp.ErrorCode != 0 {
		bc.fail(fmt.Errorf("ApiVersions: %w", kafkaError(resp.ErrorCode)))
		return
	}
	bc.versions = newBrokerVersions()
	for _, k := range resp.ApiKeys {
		bc.versions.accept(k.ApiKey, k.MinVersion, k.MaxVersion)
	}
	bc.stopSetupTimer()
	bc.state = connReady
	bc.failures = 0
	bc.pump()
}

// pump sends queued requests while in-flight slots are free.
func (bc *brokerConn) pump() {
	for bc.state == connReady && len(bc.inflight) < inflightRequestsMax && len(bc.queue) > 0 {
		c := bc.queue[0]
		bc.queue[0] = nil
		bc.queue = bc.queue[1:]
		version, ok := bc.versions.usable(c.req.Key())
		if !ok {
			bc.finishLater(c, nil, errNotSent(fmt.Errorf("%w: key %d at %s", ErrUnsupportedVersion, c.req.Key(), bc.addr)))
			continue
		}
		c.req.SetVersion(version)
		c.correlation = bc.nextCorrelation()
		c.sent = true
		bc.conn.Send(bc.cluster.encode(c.req, c.correlation))
		if c.noResponse {
			bc.finishLater(c, nil, nil)
			continue
		}
		bc.inflight = append(bc.inflight, c)
	}
}

// onFrame handles one response frame: the handshake's, or that of the oldest
// in-flight request, since Kafka answers in order on a connection.
func (bc *brokerConn) onFrame(frame []byte) {
	if len(frame) < 4 {
		bc.fail(fmt.Errorf("%w: %d-byte response frame", ErrProtocol, len(frame)))
		return
	}
	correlation := int32(binary.BigEndian.Uint32(frame))
	body := frame[4:]
	if bc.state == connHandshaking {
		if correlation != bc.handshakeCorr {
			bc.fail(fmt.Errorf("%w: correlation %d during the handshake, want %d", ErrProtocol, correlation, bc.handshakeCorr))
			return
		}
		bc.onHandshake(body)
		return
	}
	if bc.state != connReady || len(bc.inflight) == 0 || bc.inflight[0].correlation != correlation {
		bc.fail(fmt.Errorf("%w: unexpected response with correlation %d", ErrProtocol, correlation))
		return
	}
	c := bc.inflight[0]
	bc.inflight[0] = nil
	bc.inflight = bc.inflight[1:]
	resp, err := decodeResponse(c.req, body)
	if err != nil {
		bc.finish(c, nil, errSent(err))
		bc.fail(err)
		return
	}
	bc.finish(c, resp, nil)
	bc.pump()
}

// decodeResponse parses a response body (after the correlation id): the
// header's tag section for flexible versions (except ApiVersions, whose
// response header is never flexible), then the response itself.
func decodeResponse(req kmsg.Request, body []byte) (kmsg.Response, error) {
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if req.IsFlexible() && req.Key() != keyApiVersions {
		rest, err := skipTags(body)
		if err != nil {
			return nil, err
		}
		body = rest
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("%w: key %d v%d: %v", ErrProtocol, req.Key(), req.GetVersion(), err)
	}
	return resp, nil
}

// skipTags skips a tagged-field section: a count, then (tag, size, bytes).
func skipTags(b []byte) ([]byte, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return nil, fmt.Errorf("%w: bad tag count in response header", ErrProtocol)
	}
	b = b[n:]
	for i := uint64(0); i < count; i++ {
		if _, n = binary.Uvarint(b); n <= 0 {
			return nil, fmt.Errorf("%w: bad tag in response header", ErrProtocol)
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return nil, fmt.Errorf("%w: bad tag size in response header", ErrProtocol)
		}
		b = b[n+int(size):]
	}
	return b, nil
}

// onTimeout fails a call whose response is overdue. A sent request's slot
// cannot be reused before its response arrives, so, like Kafka's clients,
// we close the connection: the other in-flight requests fail with it.
func (bc *brokerConn) onTimeout(c *call) {
	if c.finished {
		return
	}
	if !c.sent {
		bc.removeQueued(c)
		bc.finish(c, nil, errNotSent(ErrRequestTimeout))
		return
	}
	bc.removeInflight(c)
	bc.finish(c, nil, errSent(ErrRequestTimeout))
	bc.fail(ErrRequestTimeout)
}

func (bc *brokerConn) removeQueued(c *call) {
	for i, q := range bc.queue {
		if q == c {
			bc.queue = append(bc.queue[:i], bc.queue[i+1:]...)
			return
		}
	}
	panic("client: timed-out unsent call is not queued")
}

func (bc *brokerConn) removeInflight(c *call) {
	for i, q := range bc.inflight {
		if q == c {
			bc.inflight = append(bc.inflight[:i], bc.inflight[i+1:]...)
			return
		}
	}
	panic("client: timed-out sent call is not in flight")
}

// fail ends the current connection: every request in flight fails as
// possibly executed, every queued one as not sent, and a redial is scheduled
// after a backoff.
func (bc *brokerConn) fail(cause error) {
	if bc.state == connClosed || bc.state == connIdle || bc.state == connBackoff {
		return
	}
	bc.stopSetupTimer()
	conn := bc.conn
	bc.conn = nil
	bc.generation++ // Ignore the callbacks of the dying connection.
	bc.state = connBackoff
	bc.failures++
	if conn != nil {
		conn.Close()
	}
	bc.failAll(cause)
	bc.backoffTimer = bc.cluster.env.Clock.AfterFunc(bc.cluster.backoff(bc.failures), bc.onBackoffDone)
	bc.cluster.onConnFailed(bc.addr)
}

// failAll fails every outstanding call with cause.
func (bc *brokerConn) failAll(cause error) {
	inflight, queue := bc.inflight, bc.queue
	bc.inflight, bc.queue = nil, nil
	for _, c := range inflight {
		if !c.finished {
			bc.finish(c, nil, errSent(fmt.Errorf("%w: %w", ErrConnectionLost, cause)))
		}
	}
	for _, c := range queue {
		if !c.finished {
			bc.finish(c, nil, errNotSent(fmt.Errorf("%w: %w", ErrConnectionLost, cause)))
		}
	}
}

func (bc *brokerConn) onBackoffDone() {
	if bc.state != connBackoff {
		return
	}
	bc.state = connIdle
	if len(bc.queue) > 0 {
		bc.dial()
	}
}

// close ends the connection for good and fails everything outstanding.
func (bc *brokerConn) close() {
	if bc.state == connClosed {
		return
	}
	if bc.backoffTimer != nil {
		bc.backoffTimer.Stop()
	}
	bc.stopSetupTimer()
	conn := bc.conn
	bc.conn = nil
	bc.state = connClosed
	if conn != nil {
		conn.Close()
	}
	bc.failAll(ErrClosed)
}
