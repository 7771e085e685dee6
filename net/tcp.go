package net

import (
	"errors"
	"fmt"
	stdnet "net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kafkasim/kafkasim/core"
)

// Limits and defaults of the TCP network.
const (
	// FrameBytesMaxDefault bounds a received frame, like Kafka's
	// socket.request.max.bytes (100 MiB).
	FrameBytesMaxDefault = 100 << 20

	// frameBytesLimit is the largest size the 4-byte signed length prefix
	// can describe.
	frameBytesLimit = 1<<31 - 1

	// dialTimeoutDefault is like Kafka's socket.connection.setup.timeout.ms.
	dialTimeoutDefault = 10 * time.Second

	// sendQueueBytesMaxDefault bounds the bytes queued for sending on one
	// connection; beyond it the connection fails rather than buffer more.
	sendQueueBytesMaxDefault = 256 << 20

	// readAheadFramesMaxDefault bounds the frames one connection may have
	// waiting on the loop; its reader blocks beyond it (TCP backpressure).
	readAheadFramesMaxDefault = 64

	// connsMaxDefault bounds the open connections of one TCP network.
	connsMaxDefault = 10_000

	// closeFlushTimeout bounds how long a closed connection keeps trying to
	// flush its queued frames to a peer that does not read.
	closeFlushTimeout = 10 * time.Second

	// acceptBackoff is the pause after a failed Accept (for example, out of
	// file descriptors) before trying again.
	acceptBackoff = 10 * time.Millisecond

	// readBatchFramesMax bounds the frames one reader hands to the loop in a
	// single post.
	readBatchFramesMax = 64

	// readBufferBytes is the size of each connection's read buffer.
	readBufferBytes = 64 << 10

	// frameChunkBytes is how much of a large frame is allocated before its
	// bytes arrive, so a peer cannot make us allocate FrameBytesMax by
	// sending a length prefix alone.
	frameChunkBytes = 1 << 20

	// spareFramesMax bounds the recycled frames a connection keeps for
	// reuse (see conn.RecycleFrame). Two let the reader read the next frame
	// into one while the loop still handles the frame before it, which is
	// the steady state of a producer that pipelines its requests.
	spareFramesMax = 2
	// spareFrameBytesMax bounds the capacity of a kept frame: a request
	// above it (several MiB of batches at once) is rare enough to allocate,
	// and an idle connection cannot pin more than spareFramesMax times this
	// until the node releases its frames (ReleaseRecycledFrames).
	spareFrameBytesMax = 16 << 20
	// frameRoundBytes rounds up the capacity of a whole frame allocated at
	// or above it, so that once recycled it also holds the next request of
	// about the same size: a producer's requests differ by a record or so
	// (a 1 MiB batch plus headers), and one recycled at its exact size would
	// be a few bytes short for half of them.
	frameRoundBytes = 64 << 10
)

// ErrFrameTooLarge is reported (wrapped) when a peer announces a frame whose
// size is negative or above FrameBytesMax, or when a frame too large for the
// length prefix is sent.
var ErrFrameTooLarge = errors.New("frame size out of range")

// ErrSendQueueFull is reported (wrapped) when a connection's send queue
// would exceed TCPOptions.SendQueueBytesMax.
var ErrSendQueueFull = errors.New("send queue full")

// ErrTooManyConns is reported (wrapped) when a dial would exceed ConnsMax.
var ErrTooManyConns = errors.New("too many connections")

// TCPOptions configures a TCP network. Zero fields take their defaults.
type TCPOptions struct {
	// FrameBytesMax bounds a received frame (default 100 MiB, like Kafka's
	// socket.request.max.bytes). A larger or negative size prefix closes
	// the connection with ErrFrameTooLarge.
	FrameBytesMax int
	// DialTimeout bounds connection setup (default 10s, like Kafka's
	// socket.connection.setup.timeout.ms).
	DialTimeout time.Duration
	// SendQueueBytesMax bounds the bytes queued for sending per connection
	// (default 256 MiB).
	SendQueueBytesMax int
	// ReadAheadFramesMax bounds the received frames per connection waiting
	// for the loop (default 64).
	ReadAheadFramesMax int
	// ConnsMax bounds the open connections, dialed and accepted (default
	// 10000). Connections beyond it are refused.
	ConnsMax int
}

func (o *TCPOptions) setDefaults() error {
	if o.FrameBytesMax == 0 {
		o.FrameBytesMax = FrameBytesMaxDefault
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = dialTimeoutDefault
	}
	if o.SendQueueBytesMax == 0 {
		o.SendQueueBytesMax = sendQueueBytesMaxDefault
	}
	if o.ReadAheadFramesMax == 0 {
		o.ReadAheadFramesMax = readAheadFramesMaxDefault
	}
	if o.ConnsMax == 0 {
		o.ConnsMax = connsMaxDefault
	}
	if o.FrameBytesMax < 0 || o.FrameBytesMax > frameBytesLimit {
		return fmt.Errorf("net: FrameBytesMax %d outside [1, %d]", o.FrameBytesMax, frameBytesLimit)
	}
	if o.DialTimeout < 0 || o.SendQueueBytesMax < 0 || o.ReadAheadFramesMax < 0 || o.ConnsMax < 0 {
		return errors.New("net: TCPOptions must not be negative")
	}
	return nil
}

// TCP is the production core.Network: connections over real TCP carrying
// Kafka-framed messages (a 4-byte big-endian size, then that many bytes).
// Each connection has a reader goroutine that posts frames to the loop and a
// writer goroutine that drains its send queue; every handler callback runs on
// the loop.
type TCP struct {
	loop *Loop
	opts TCPOptions

	connsOpen atomic.Int64

	mu        sync.Mutex
	closed    bool
	listeners map[*listener]struct{}
	conns     map[*conn]struct{}
	// bound holds the sockets Bind bound that no Listen has adopted yet,
	// by the address they were asked for.
	bound map[string]stdnet.Listener
}

var _ core.Network = (*TCP)(nil)

// NewTCP returns a TCP network whose callbacks run on loop.
func NewTCP(loop *Loop, opts TCPOptions) (*TCP, error) {
	if loop == nil {
		return nil, errors.New("net: NewTCP with a nil loop")
	}
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	return &TCP{
		loop:      loop,
		opts:      opts,
		listeners: make(map[*listener]struct{}),
		conns:     make(map[*conn]struct{}),
		bound:     make(map[string]stdnet.Listener),
	}, nil
}

// Close stops every listener and drops every connection at once, without
// callbacks: it is for shutting a process or a test down. It may be called
// from any goroutine.
func (t *TCP) Close() {
	t.mu.Lock()
	t.closed = true
	listeners := t.listeners
	conns := t.conns
	bound := t.bound
	t.listeners = make(map[*listener]struct{})
	t.conns = make(map[*conn]struct{})
	t.bound = make(map[string]stdnet.Listener)
	t.mu.Unlock()
	for l := range listeners {
		_ = l.Close()
	}
	for _, ln := range bound {
		_ = ln.Close()
	}
	for c := range conns {
		c.abort()
	}
}

// track registers a connection for Close, refusing it beyond ConnsMax or
// after Close.
func (t *TCP) track(c *conn) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fmt.Errorf("net: %w: network closed", core.ErrConnRefused)
	}
	if t.connsOpen.Load() >= int64(t.opts.ConnsMax) {
		return fmt.Errorf("net: %w: %d open", ErrTooManyConns, t.opts.ConnsMax)
	}
	t.connsOpen.Add(1)
	t.conns[c] = struct{}{}
	return nil
}

func (t *TCP) untrack(c *conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.conns[c]; ok {
		delete(t.conns, c)
		t.connsOpen.Add(-1)
	}
}

// OpenConns returns the number of tracked connections.
func (t *TCP) OpenConns() int { return int(t.connsOpen.Load()) }

// listener is a core.Listener over a TCP listener.
type listener struct {
	t      *TCP
	ln     stdnet.Listener
	accept func(core.Conn) core.ConnHandler
	closed atomic.Bool
}

// BindError is a failure to bind a listening address. Its message is short
// enough for one command-line line ("listen on 127.0.0.1:9092: address
// already in use"), and errors.Is matches the system error
// (syscall.EADDRINUSE, syscall.EACCES).
type BindError struct {
	// Addr is the address that was asked for.
	Addr string
	// Err is the cause: the system error when there is one.
	Err error
}

func (e *BindError) Error() string { return "listen on " + e.Addr + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *BindError) Unwrap() error { return e.Err }

// Bind binds addr now but accepts nothing until a later Listen with the same
// addr string adopts the socket. A process binds every listener first, so
// that "address already in use" stops it before it touches its data, and
// serves only once its recovery has finished; connections that arrive in
// between wait in the kernel's accept backlog. It returns the bound address,
// with the real port when port 0 was asked. Close releases a socket that was
// never adopted.
func (t *TCP) Bind(addr string) (string, error) {
	ln, err := stdnet.Listen("tcp", addr)
	if err != nil {
		return "", &BindError{Addr: addr, Err: bindCause(err)}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		_ = ln.Close()
		return "", &BindError{Addr: addr, Err: errors.New("network closed")}
	case t.bound[addr] != nil:
		_ = ln.Close()
		return "", &BindError{Addr: addr, Err: errors.New("bound twice")}
	}
	t.bound[addr] = ln
	return ln.Addr().String(), nil
}

// bindCause strips the "listen tcp ADDR: bind:" layers from a listen error,
// keeping the system error (or the resolver's error) that says what is
// wrong.
func bindCause(err error) error {
	var syscallErr *os.SyscallError
	if errors.As(err, &syscallErr) {
		return syscallErr.Err
	}
	var opErr *stdnet.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		return opErr.Err
	}
	return err
}

// takeBound returns and forgets the socket Bind bound for addr, or nil.
func (t *TCP) takeBound(addr string) stdnet.Listener {
	t.mu.Lock()
	defer t.mu.Unlock()
	ln := t.bound[addr]
	delete(t.bound, addr)
	return ln
}

// Listen accepts connections on addr ("host:port"; port 0 picks a free port,
// see Addr) on a goroutine, calling accept on the loop for each. When Bind
// already bound addr, Listen adopts that socket (and the connections waiting
// in its backlog); otherwise it binds addr now.
func (t *TCP) Listen(addr string, accept func(core.Conn) core.ConnHandler) (core.Listener, error) {
	if accept == nil {
		return nil, fmt.Errorf("net: listen %q: nil accept function", addr)
	}
	ln := t.takeBound(addr)
	if ln == nil {
		var err error
		ln, err = stdnet.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("net: listen %q: %w", addr, err)
		}
	}
	l := &listener{t: t, ln: ln, accept: accept}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		_ = ln.Close()
		return nil, fmt.Errorf("net: listen %q: network closed", addr)
	}
	t.listeners[l] = struct{}{}
	t.mu.Unlock()
	go l.acceptLoop()
	return l, nil
}

// Addr returns the bound address, with the real port when port 0 was asked.
func (l *listener) Addr() string { return l.ln.Addr().String() }

// Close stops accepting. Established connections stay open.
func (l *listener) Close() error {
	if !l.closed.CompareAndSwap(false, true) {
		return nil
	}
	l.t.mu.Lock()
	delete(l.t.listeners, l)
	l.t.mu.Unlock()
	return l.ln.Close()
}

func (l *listener) acceptLoop() {
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if l.closed.Load() || errors.Is(err, stdnet.ErrClosed) {
				return
			}
			// Temporary failures such as running out of descriptors: wait
			// a little rather than spin.
			time.Sleep(acceptBackoff)
			continue
		}
		c := newConn(l.t, nil)
		c.state = connOpen
		if err := l.t.track(c); err != nil {
			_ = nc.Close()
			continue
		}
		c.attach(nc)
		if !l.t.loop.Post(func() { c.accepted(l.accept) }) {
			c.abort()
			l.t.untrack(c)
		}
	}
}

// Dial connects to addr on a goroutine; the outcome (OnOpen or OnClose) is
// posted to the loop. Frames sent before OnOpen are queued.
func (t *TCP) Dial(addr string, h core.ConnHandler) core.Conn {
	if h == nil {
		panic("net: Dial with a nil handler")
	}
	c := newConn(t, h)
	c.remote = addr
	if err := t.track(c); err != nil {
		c.state = connDone
		t.loop.Post(func() { h.OnClose(c, fmt.Errorf("net: dial %s: %w", addr, err)) })
		return c
	}
	go func() {
		dialer := stdnet.Dialer{Timeout: t.opts.DialTimeout}
		nc, err := dialer.Dial("tcp", addr)
		if !t.loop.Post(func() { c.dialed(nc, err) }) && nc != nil {
			_ = nc.Close()
		}
	}()
	return c
}

// dialError maps a dial failure to the core error it stands for.
func dialError(addr string, err error) error {
	var netErr stdnet.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("net: dial %s: %w: %v", addr, core.ErrConnRefused, err)
	case errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("net: dial %s: %w: %v", addr, core.ErrTimeout, err)
	default:
		return fmt.Errorf("net: dial %s: %w: %v", addr, core.ErrConnRefused, err)
	}
}
