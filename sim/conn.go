package sim

import (
	"fmt"
	"time"

	"github.com/kafkasim/kafkasim/core"
)

// nodeNetwork is one node's view of the network: its Env().Net.
type nodeNetwork struct {
	nw   *Network
	node *Node
}

var _ core.Network = (*nodeNetwork)(nil)

// listener is a core.Listener of a simulated node.
type listener struct {
	nw     *Network
	node   *Node
	addr   string
	accept func(core.Conn) core.ConnHandler
	closed bool
}

func (l *listener) Addr() string { return l.addr }

func (l *listener) Close() error {
	if l.closed {
		return nil
	}
	l.closed = true
	delete(l.nw.listeners, l.addr)
	kept := l.node.listeners[:0]
	for _, other := range l.node.listeners {
		if other != l {
			kept = append(kept, other)
		}
	}
	l.node.listeners = kept
	l.nw.s.Trace("unlisten %s", l.addr)
	return nil
}

// Listen accepts connections at addr, whose host must be the node's name (or
// empty, meaning the node). Port 0 picks a free ephemeral port.
func (v *nodeNetwork) Listen(addr string, accept func(core.Conn) core.ConnHandler) (core.Listener, error) {
	n := v.node
	if accept == nil {
		return nil, fmt.Errorf("sim: listen %q: nil accept function", addr)
	}
	if !n.alive {
		return nil, fmt.Errorf("sim: listen %q: node %s is down", addr, n.name)
	}
	host, port, err := splitAddr(addr)
	if err != nil {
		return nil, err
	}
	if host != "" && host != n.name {
		return nil, fmt.Errorf("sim: listen %q: host must be this node's name %q", addr, n.name)
	}
	if port == 0 {
		var ok bool
		if port, ok = n.nextPort(); !ok {
			return nil, fmt.Errorf("sim: listen %q: no free port", addr)
		}
	}
	bound := joinAddr(n.name, port)
	if _, used := v.nw.listeners[bound]; used {
		return nil, fmt.Errorf("sim: listen %q: address already in use", bound)
	}
	l := &listener{nw: v.nw, node: n, addr: bound, accept: accept}
	v.nw.listeners[bound] = l
	n.listeners = append(n.listeners, l)
	v.nw.s.Trace("listen %s", bound)
	return l, nil
}

// endState is the life of one end of a connection.
type endState uint8

const (
	endDialing endState = iota // dialed, not yet open
	endOpen                    // established
	endClosing                 // closed locally, OnClose(nil) pending
	endDone                    // OnClose delivered, or the node crashed
)

// conn is one simulated connection and its two ends.
type conn struct {
	id     uint64
	ends   [2]*endpoint // [0] dialer, [1] acceptor (nil until accepted)
	target *Node        // the dialed node, nil if the address did not resolve
	dialAt time.Duration
	// broken means the connection carries no more frames: it was closed,
	// reset, lost a frame or lost a node. Ends still receive what was
	// already in flight toward them, then OnClose.
	broken bool
	// halfOpen means one end's node lost power (Node.PowerOff): the other
	// end stays open and its frames vanish, until its node closes it or
	// the powered-off host, restarted, answers a frame with a reset.
	halfOpen bool
	dead     bool // every end is done; the network forgets it
}

// endpoint is one end of a connection: the core.Conn handed to a node.
type endpoint struct {
	c           *conn
	side        int
	node        *Node
	incarnation uint64
	handler     core.ConnHandler
	local       string
	remote      string
	state       endState
	queued      [][]byte // frames sent before the dial completed
	queuedBytes int
	// closeScheduled is set once an OnClose event for this end is queued, so
	// that at most one is.
	closeScheduled bool
	// deliverLast is the latest delivery time scheduled toward this end;
	// every later delivery is scheduled no earlier, which keeps order.
	deliverLast time.Duration
	// inflightBytes counts bytes sent toward this end and not yet delivered.
	inflightBytes int
	// held are the frames this end sent into a blackhole, oldest first, and
	// heldBytes their size. TCP never delivers a later byte without an
	// earlier one: it retransmits what was not acknowledged, so a silently
	// dropped frame is delayed, not lost, and every later frame of the
	// connection waits behind it. Heal sends them on (releaseHeld); a
	// connection that breaks first loses them. Dropping the frame alone
	// let later frames of the same connection arrive after a gap, which
	// TCP never does: a broker's AllocateProducerIds vanished while its
	// later heartbeats were answered (sim seed 1901378).
	held      [][]byte
	heldBytes int
}

var _ core.Conn = (*endpoint)(nil)

var _ core.FrameRecycler = (*endpoint)(nil)

// recycledFrameByte is what a recycled frame is filled with.
const recycledFrameByte = 0xEE

// RecycleFrame overwrites a frame its node handed back at once, as the
// production network may overwrite it with the next request at any moment
// (core.FrameRecycler): a node that still reads a recycled frame, or
// anything aliasing it, reads this poison instead of its data, and the
// checker sees the damage (a batch that fails its CRC, a record nobody
// wrote). Nothing is reused, and the poison depends on no randomness, so a
// correct node runs exactly as it would without it.
func (e *endpoint) RecycleFrame(frame []byte) {
	for i := range frame {
		frame[i] = recycledFrameByte
	}
}

// ReleaseRecycledFrames does nothing: the simulated network keeps no
// frames for reuse.
func (e *endpoint) ReleaseRecycledFrames() {}

func (e *endpoint) LocalAddr() string  { return e.local }
func (e *endpoint) RemoteAddr() string { return e.remote }

func (e *endpoint) peer() *endpoint { return e.c.ends[1-e.side] }

func (e *endpoint) nw() *Network { return e.node.s.network }

// live reports whether the end belongs to the running incarnation of its node.
func (e *endpoint) live() bool {
	return e.node.alive && e.node.incarnation == e.incarnation
}

// reserve returns the delivery time of the next event toward e, at least d
// from now and no earlier than the previous one.
func (e *endpoint) reserve(d time.Duration) time.Duration {
	at := max(e.deliverLast, e.node.s.now+d)
	e.deliverLast = at
	return at
}

// Dial starts a connection to addr. The outcome arrives as an event: OnOpen,
// or OnClose with core.ErrConnRefused (nothing listens, or the host is not a
// node), core.ErrTimeout (the link is cut) or core.ErrConnReset.
func (v *nodeNetwork) Dial(addr string, h core.ConnHandler) core.Conn {
	if h == nil {
		panic("sim: Dial with a nil handler")
	}
	nw, n := v.nw, v.node
	c := &conn{id: nw.connNext, dialAt: nw.s.now}
	nw.connNext++
	e := &endpoint{c: c, node: n, incarnation: n.incarnation, handler: h, remote: addr}
	port, ok := n.nextPort()
	if !ok {
		port = 0
	}
	e.local = joinAddr(n.name, port)
	c.ends[0] = e
	nw.compact()
	nw.conns = append(nw.conns, c)
	nw.s.Trace("dial conn=%d %s->%s", c.id, e.local, addr)
	if !n.alive {
		// A dead incarnation's calls have no effect; it gets no callbacks.
		e.state = endDone
		nw.retire(c)
		return e
	}
	host, _, err := splitAddr(addr)
	target := nw.s.nodesByName[host]
	switch {
	case err != nil:
		nw.failDial(e, 0, fmt.Errorf("sim: dial %q: %w: %v", addr, core.ErrConnRefused, err))
	case target == nil:
		nw.failDial(e, 0, fmt.Errorf("sim: dial %q: %w: unknown host", addr, core.ErrConnRefused))
	case nw.IsCut(n, target):
		nw.failDial(e, nw.opts.DialTimeout, fmt.Errorf("sim: dial %q: %w", addr, core.ErrTimeout))
	case !target.alive && target.poweredOff:
		nw.stats.DialsToPoweredOff++
		nw.failDial(e, nw.opts.DialTimeout, fmt.Errorf("sim: dial %q: %w: host powered off", addr, core.ErrTimeout))
	case !target.alive:
		rtt := nw.delay(n, target) + nw.delay(target, n)
		nw.failDial(e, rtt, fmt.Errorf("sim: dial %q: %w: host is down", addr, core.ErrConnRefused))
	default:
		c.target = target
		at := nw.s.now + nw.delay(n, target)
		nw.s.schedule(target, at, "net.syn", func() { nw.arriveSyn(c, host) })
	}
	return e
}

// failDial breaks a connection that is still dialing and tells the dialer
// err after d.
func (nw *Network) failDial(e *endpoint, d time.Duration, err error) {
	e.c.broken = true
	e.closeScheduled = true
	nw.s.schedule(e.node, e.reserve(d), "net.dial-fail", func() { nw.closeEnd(e, err) })
}

// arriveSyn runs on the dialed node when the connection request arrives:
// either a listener accepts it or the dialer is refused.
func (nw *Network) arriveSyn(c *conn, host string) {
	e := c.ends[0]
	if c.broken {
		return // the dialer gave up, or the connection was reset
	}
	b := c.target
	if nw.IsCut(b, e.node) {
		// The reply is lost: the dialer times out, counted from its dial.
		wait := max(c.dialAt+nw.opts.DialTimeout-nw.s.now, 0)
		nw.failDial(e, wait, fmt.Errorf("sim: dial %q: %w", e.remote, core.ErrTimeout))
		return
	}
	_, port, _ := splitAddr(e.remote)
	l := nw.listeners[joinAddr(host, port)]
	if l == nil {
		err := fmt.Errorf("sim: dial %q: %w", e.remote, core.ErrConnRefused)
		nw.failDial(e, nw.delay(b, e.node), err)
		return
	}
	a := &endpoint{c: c, side: 1, node: b, incarnation: b.incarnation,
		local: l.addr, remote: e.local, state: endOpen}
	c.ends[1] = a
	// Reserve the dialer's open before calling accept, so that frames the
	// acceptor sends from inside accept arrive after the open.
	nw.s.schedule(e.node, e.reserve(nw.delay(b, e.node)), "net.open", func() { nw.open(e) })
	nw.s.Trace("accept conn=%d %s", c.id, l.addr)
	a.handler = l.accept(a)
	if a.handler == nil {
		// The listener refused the connection by returning no handler.
		a.handler = nopHandler{}
		a.state = endDone
		nw.breakConn(c, 0)
	}
}

// open runs on the dialer when the connection is established: queued frames
// go out first, then OnOpen.
func (nw *Network) open(e *endpoint) {
	if e.state != endDialing {
		return
	}
	e.state = endOpen
	queued := e.queued
	e.queued, e.queuedBytes = nil, 0
	for _, frame := range queued {
		if e.c.broken {
			break
		}
		nw.transmit(e, frame)
	}
	e.handler.OnOpen(e)
}

// Send queues frame for the peer; see core.Conn.
func (e *endpoint) Send(frame []byte) {
	nw := e.nw()
	if e.c.broken || !e.live() || (e.state != endDialing && e.state != endOpen) {
		nw.s.Trace("drop conn=%d bytes=%d (closed)", e.c.id, len(frame))
		return
	}
	if e.state == endDialing {
		nw.queue(e, frame)
		return
	}
	nw.transmit(e, frame)
}

// queue holds a frame sent before the connection opened.
func (nw *Network) queue(e *endpoint, frame []byte) {
	if e.queuedBytes+len(frame) > nw.opts.ConnInflightBytesMax {
		nw.s.Trace("overflow conn=%d queued=%d bytes=%d", e.c.id, e.queuedBytes, len(frame))
		nw.breakConn(e.c, 0)
		return
	}
	e.queued = append(e.queued, frame)
	e.queuedBytes += len(frame)
}

// transmit sends one frame over an open connection: it is lost (breaking the
// connection) or delivered after a random delay, in order.
func (nw *Network) transmit(e *endpoint, frame []byte) {
	p := e.peer()
	if p == nil {
		panic(fmt.Sprintf("sim: transmit on conn %d without an accepting end", e.c.id))
	}
	size := len(frame)
	if e.c.halfOpen {
		nw.transmitHalfOpen(e, p, size)
		return
	}
	if nw.IsBlackholed(e.node, p.node) || len(e.held) > 0 {
		nw.hold(e, frame)
		return
	}
	cfg := nw.link(e.node, p.node)
	cut := nw.IsCut(e.node, p.node)
	if cut || (cfg.LossProbability > 0 && nw.rand.Chance(cfg.LossProbability)) {
		if cut {
			nw.stats.FramesLostCut++
		} else {
			nw.stats.FramesLostRandom++
		}
		nw.s.Trace("lost conn=%d bytes=%d", e.c.id, size)
		nw.breakConn(e.c, nw.opts.BreakTimeout)
		return
	}
	if p.inflightBytes+size > nw.opts.ConnInflightBytesMax {
		nw.s.Trace("overflow conn=%d inflight=%d bytes=%d", e.c.id, p.inflightBytes, size)
		nw.breakConn(e.c, 0)
		return
	}
	p.inflightBytes += size
	at := p.reserve(nw.delay(e.node, p.node))
	nw.s.Trace("send conn=%d bytes=%d at=%d", e.c.id, size, at)
	nw.s.schedule(p.node, at, "net.frame", func() {
		p.inflightBytes -= size
		if p.inflightBytes < 0 {
			panic(fmt.Sprintf("sim: conn %d in-flight bytes went negative", p.c.id))
		}
		if p.state != endOpen {
			return
		}
		nw.s.Trace("frame conn=%d bytes=%d", p.c.id, size)
		p.handler.OnFrame(p, frame)
	})
}

// hold keeps a frame that a blackhole swallowed until Heal (see
// endpoint.held). Like a full send buffer, more than ConnInflightBytesMax
// held breaks the connection.
func (nw *Network) hold(e *endpoint, frame []byte) {
	if e.heldBytes+len(frame) > nw.opts.ConnInflightBytesMax {
		nw.s.Trace("overflow conn=%d held=%d bytes=%d", e.c.id, e.heldBytes, len(frame))
		nw.breakConn(e.c, 0)
		return
	}
	nw.stats.FramesBlackholed++
	nw.s.Trace("blackholed conn=%d bytes=%d", e.c.id, len(frame))
	e.held = append(e.held, frame)
	e.heldBytes += len(frame)
}

// releaseHeld sends on, in order, the frames held by every connection whose
// direction is no longer blackholed, as TCP's next retransmission does once
// the path is back. The frames of a connection that broke, or whose sender
// is no longer the incarnation that sent them (its kernel, and the bytes in
// it, are gone), are dropped.
func (nw *Network) releaseHeld() {
	for _, c := range nw.conns {
		for _, e := range c.ends {
			if e == nil || len(e.held) == 0 {
				continue
			}
			if c.broken || !e.live() {
				e.held, e.heldBytes = nil, 0
				continue
			}
			if nw.IsBlackholed(e.node, e.peer().node) {
				continue
			}
			frames := e.held
			e.held, e.heldBytes = nil, 0
			nw.s.Trace("release conn=%d frames=%d", c.id, len(frames))
			for _, frame := range frames {
				if c.broken {
					break
				}
				nw.transmit(e, frame)
			}
		}
	}
}

// transmitHalfOpen sends a frame toward the end of a host that lost power:
// it vanishes. If the host is up again (a later incarnation) and reachable,
// its kernel answers the unknown connection with a reset, as TCP does.
func (nw *Network) transmitHalfOpen(e, p *endpoint, size int) {
	nw.stats.FramesToPoweredOff++
	nw.s.Trace("void conn=%d bytes=%d", e.c.id, size)
	host := p.node
	if host.alive && !nw.IsCut(e.node, host) && !nw.IsCut(host, e.node) {
		wait := nw.delay(e.node, host) + nw.delay(host, e.node)
		nw.breakConn(e.c, wait)
	}
}

// Close closes this end: OnClose(nil) follows as an event, and the peer sees
// core.ErrConnReset after the frames already in flight toward it.
func (e *endpoint) Close() {
	nw := e.nw()
	if !e.live() || (e.state != endDialing && e.state != endOpen) {
		return
	}
	nw.s.Trace("close conn=%d %s", e.c.id, e.local)
	e.state = endClosing
	e.queued, e.queuedBytes = nil, 0
	e.closeScheduled = true
	nw.s.schedule(e.node, nw.s.now, "net.closed", func() { nw.closeEnd(e, nil) })
	c := e.c
	if c.broken {
		return
	}
	c.broken = true
	p := e.peer()
	if p == nil || p.closeScheduled || p.state == endDone {
		return
	}
	wait := nw.delay(e.node, p.node)
	if nw.IsCut(e.node, p.node) {
		wait = nw.opts.BreakTimeout
	}
	nw.scheduleReset(p, wait)
}

// scheduleReset tells end e, after wait and after what is in flight toward
// it, that its connection was reset.
func (nw *Network) scheduleReset(e *endpoint, wait time.Duration) {
	if e.closeScheduled || e.state == endDone || !e.live() {
		return
	}
	e.closeScheduled = true
	nw.s.schedule(e.node, e.reserve(wait), "net.reset", func() {
		nw.closeEnd(e, fmt.Errorf("sim: conn %s->%s: %w", e.local, e.remote, core.ErrConnReset))
	})
}

// breakConn stops a connection from carrying frames and resets both ends
// after wait.
func (nw *Network) breakConn(c *conn, wait time.Duration) {
	if c.broken {
		return
	}
	c.broken = true
	nw.s.Trace("break conn=%d", c.id)
	for _, e := range c.ends {
		if e != nil {
			nw.scheduleReset(e, wait)
		}
	}
}

// closeEnd delivers the one OnClose of an end.
func (nw *Network) closeEnd(e *endpoint, err error) {
	if e.state == endDone {
		return
	}
	if !e.c.broken {
		panic(fmt.Sprintf("sim: OnClose on conn %d that is not broken", e.c.id))
	}
	e.state = endDone
	e.queued, e.queuedBytes = nil, 0
	nw.s.Trace("onclose conn=%d %s err=%v", e.c.id, e.local, err)
	nw.retire(e.c)
	e.handler.OnClose(e, err)
}

// retire marks a connection dead once all its ends are done.
func (nw *Network) retire(c *conn) {
	if c.dead {
		return
	}
	for _, e := range c.ends {
		if e != nil && e.state != endDone {
			return
		}
	}
	c.dead = true
	nw.connsDead++
}

// compact drops dead connections from the list once they dominate it. It
// must not run while a loop walks the list.
func (nw *Network) compact() {
	if nw.connsDead <= 64 || nw.connsDead*2 <= len(nw.conns) {
		return
	}
	kept := nw.conns[:0]
	for _, other := range nw.conns {
		if !other.dead {
			kept = append(kept, other)
		}
	}
	clear(nw.conns[len(kept):])
	nw.conns = kept
	nw.connsDead = 0
}

// nopHandler stands in for the handler of a connection its listener refused.
type nopHandler struct{}

func (nopHandler) OnOpen(core.Conn)          {}
func (nopHandler) OnFrame(core.Conn, []byte) {}
func (nopHandler) OnClose(core.Conn, error)  {}
