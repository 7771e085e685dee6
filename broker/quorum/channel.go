package quorum

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core"
)

// ErrChannelClosed is given to the callbacks of requests whose connection
// broke, closed or went silent before they were answered.
var ErrChannelClosed = errors.New("quorum: connection to the peer closed before the answer")

// Channel sends Kafka requests to one address and hands each answer to its
// request's callback: the broker's line to the active controller
// (BrokerRegistration, BrokerHeartbeat, forwarded admin requests) and a
// voter's line to each other voter. One connection carries the requests in
// order; it is dialed on the first request and again after it breaks.
//
// A connection on which requests wait and nothing came back for a whole
// timeout (between one and two timeouts after the last answer) is closed,
// failing what waits on it, and the next request dials again: a peer that
// went silent (a dial that hangs, frames dropped without a reset) must not
// hold traffic on a dead connection, as Kafka's network client disconnects
// after request.timeout.ms. The check runs on a timer and counts answers,
// never reading the clock: a clock stepped back by hours once kept a dead
// connection, and a broker's heartbeats with it, waiting forever (cluster
// seed 1002898).
type Channel struct {
	env      core.Env
	log      *slog.Logger
	address  string
	clientID string
	timeout  time.Duration

	conn    core.Conn
	waiting map[int32]pendingRequest
	nextID  int32
	// progressed is set when the connection made progress (a request sent
	// while none waited, or an answer) since the watchdog last looked.
	progressed    bool
	watchdog      core.Timer
	closedForever bool
}

// pendingRequest is a request sent and not answered yet.
type pendingRequest struct {
	request kmsg.Request
	done    func(kmsg.Response, error)
}

// NewChannel returns a channel to address; it connects on the first Send.
func NewChannel(env core.Env, log *slog.Logger, address, clientID string, timeout time.Duration) *Channel {
	return &Channel{env: env, log: log, address: address, clientID: clientID, timeout: timeout}
}

// Address is where the channel sends.
func (c *Channel) Address() string { return c.address }

// Send writes req and calls done exactly once, on the loop and never inside
// Send: with the answer, or with ErrChannelClosed.
func (c *Channel) Send(req kmsg.Request, done func(kmsg.Response, error)) {
	if c.closedForever {
		c.env.Clock.AfterFunc(0, func() { done(nil, ErrChannelClosed) })
		return
	}
	if c.conn == nil {
		c.waiting = make(map[int32]pendingRequest)
		c.conn = c.env.Net.Dial(c.address, c)
	}
	if len(c.waiting) == 0 {
		c.progressed = true
	}
	c.nextID++
	c.waiting[c.nextID] = pendingRequest{request: req, done: done}
	c.conn.Send(appendRequestFrame(nil, c.nextID, c.clientID, req))
	c.armWatchdog()
}

// Close closes the channel for good; what waits fails with
// ErrChannelClosed.
func (c *Channel) Close() {
	c.closedForever = true
	if c.watchdog != nil {
		c.watchdog.Stop()
	}
	c.drop()
}

// armWatchdog makes sure a timer will look at the connection within the
// timeout while requests wait.
func (c *Channel) armWatchdog() {
	if c.watchdog != nil {
		return
	}
	c.watchdog = c.env.Clock.AfterFunc(c.timeout, func() {
		c.watchdog = nil
		if c.conn == nil || len(c.waiting) == 0 {
			return
		}
		if !c.progressed {
			c.log.Debug("peer silent; closing", slog.String("address", c.address))
			c.drop()
			return
		}
		c.progressed = false
		c.armWatchdog()
	})
}

// drop closes the connection and fails every request waiting on it, in the
// order they were sent.
func (c *Channel) drop() {
	if c.conn == nil {
		return
	}
	conn, waiting := c.conn, c.waiting
	c.conn, c.waiting = nil, nil
	conn.Close()
	c.failAll(waiting)
}

// failAll fails requests in id order, each on its own later loop turn so
// that no callback runs inside another's caller.
func (c *Channel) failAll(waiting map[int32]pendingRequest) {
	if len(waiting) == 0 {
		return
	}
	ids := make([]int32, 0, len(waiting))
	for id := range waiting { // order-independent: sorted below
		ids = append(ids, id)
	}
	slices.Sort(ids)
	c.env.Clock.AfterFunc(0, func() {
		for _, id := range ids {
			waiting[id].done(nil, ErrChannelClosed)
		}
	})
}

// OnOpen implements core.ConnHandler.
func (c *Channel) OnOpen(core.Conn) {}

// OnFrame hands an answer to its request's callback. A frame that does not
// parse or answers nothing we asked breaks the connection: the peer speaks
// something else.
func (c *Channel) OnFrame(conn core.Conn, frame []byte) {
	if conn != c.conn {
		return
	}
	resp, pending, err := c.decodeResponse(frame)
	if err != nil {
		c.log.Warn("bad answer from a peer", slog.String("address", c.address), slog.Any("err", err))
		c.drop()
		return
	}
	c.progressed = true
	pending.done(resp, nil)
}

// OnClose fails what waited on the connection; the next Send dials again.
func (c *Channel) OnClose(conn core.Conn, _ error) {
	if conn != c.conn {
		return
	}
	waiting := c.waiting
	c.conn, c.waiting = nil, nil
	c.failAll(waiting)
}

// decodeResponse parses a response frame to a request that waits.
func (c *Channel) decodeResponse(frame []byte) (kmsg.Response, pendingRequest, error) {
	if len(frame) < 4 {
		return nil, pendingRequest{}, fmt.Errorf("%d byte frame has no correlation id", len(frame))
	}
	id := int32(binary.BigEndian.Uint32(frame))
	pending, ok := c.waiting[id]
	if !ok {
		return nil, pendingRequest{}, fmt.Errorf("answer to correlation id %d, which no request carries", id)
	}
	delete(c.waiting, id)
	req := pending.request
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	reader := kbin.Reader{Src: frame[4:]}
	if resp.IsFlexible() && req.Key() != apiKeyAPIVersions {
		kmsg.SkipTags(&reader)
		if err := reader.Complete(); err != nil {
			return nil, pending, fmt.Errorf("response header tags: %w", err)
		}
	}
	if err := resp.ReadFrom(reader.Src); err != nil {
		return nil, pending, fmt.Errorf("%s v%d response: %w", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp, pending, nil
}

// apiKeyAPIVersions is the one API whose response header never carries
// tagged fields (its request header does).
const apiKeyAPIVersions = 18

// appendRequestFrame appends a request frame without its size prefix (the
// network adds it): request header v1, or v2 with empty tagged fields for
// flexible versions, then the body.
func appendRequestFrame(dst []byte, correlationID int32, clientID string, req kmsg.Request) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(req.Key()))
	dst = binary.BigEndian.AppendUint16(dst, uint16(req.GetVersion()))
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(clientID)))
	dst = append(dst, clientID...)
	if req.IsFlexible() {
		dst = append(dst, 0)
	}
	return req.AppendTo(dst)
}
