package net

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	stdnet "net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kafkasim/kafkasim/core"
)

// frameHeaderBytes is the size of the Kafka length prefix.
const frameHeaderBytes = 4

// connState is the loop's view of a connection.
type connState uint8

const (
	connDialing connState = iota
	connOpen
	connDone // OnClose delivered or scheduled; no callback follows
)

// conn is one TCP connection: a core.Conn. Fields under "loop" are touched
// only on the loop; fields under mu are shared with the writer goroutine and
// with TCP.Close.
type conn struct {
	t *TCP

	// loop
	handler core.ConnHandler
	state   connState
	local   string
	remote  string

	mu          sync.Mutex
	nc          stdnet.Conn
	queue       [][]byte
	spare       [][]byte // the writer's last batch, emptied, for the next queue
	queuedBytes int
	closing     bool // flush the queue, then close the socket
	aborted     bool // close the socket now, dropping the queue

	wake     chan struct{} // wakes the writer
	done     chan struct{} // closed when the connection ends; frees the reader
	doneOnce sync.Once
	credits  chan struct{} // one token per frame waiting on the loop

	// framesQueued counts the frames Send queued (loop only);
	// framesWritten counts those the writer has finished writing to the
	// socket. See FramesWritten.
	framesQueued  uint64
	framesWritten atomic.Uint64

	// spareMu guards spares: frames the node handed back through
	// RecycleFrame (on the loop), for the reader to read later frames into
	// (readFrame, on the reader goroutine). At most spareFramesMax, each
	// with a capacity of at most spareFrameBytesMax. framesReused counts the
	// frames read into a spare.
	spareMu      sync.Mutex
	spares       [][]byte
	framesReused atomic.Uint64
}

var (
	_ core.Conn          = (*conn)(nil)
	_ core.FrameRecycler = (*conn)(nil)
)

func newConn(t *TCP, h core.ConnHandler) *conn {
	return &conn{
		t:       t,
		handler: h,
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		credits: make(chan struct{}, t.opts.ReadAheadFramesMax),
	}
}

// LocalAddr returns the local address, or "" while dialing.
func (c *conn) LocalAddr() string { return c.local }

// RemoteAddr returns the peer's address (the dialed address while dialing).
func (c *conn) RemoteAddr() string { return c.remote }

// attach gives the connection its socket.
func (c *conn) attach(nc stdnet.Conn) {
	c.mu.Lock()
	c.nc = nc
	aborted := c.aborted
	c.mu.Unlock()
	if aborted {
		_ = nc.Close()
	}
	c.local = nc.LocalAddr().String()
	c.remote = nc.RemoteAddr().String()
}

// start launches the reader and writer goroutines of an open connection.
func (c *conn) start() {
	go c.readLoop()
	go c.writeLoop()
}

// accepted runs on the loop for a connection a listener accepted.
func (c *conn) accepted(accept func(core.Conn) core.ConnHandler) {
	h := accept(c)
	if h == nil {
		// The listener refused the connection.
		c.state = connDone
		c.abort()
		c.finish()
		return
	}
	c.handler = h
	// Start even if accept closed the connection: the writer flushes what
	// accept sent and then closes the socket.
	c.start()
}

// dialed runs on the loop with the outcome of a dial.
func (c *conn) dialed(nc stdnet.Conn, err error) {
	if c.state != connDialing {
		if nc != nil {
			_ = nc.Close()
		}
		return // closed while dialing
	}
	if err != nil {
		c.state = connDone
		c.finish()
		c.handler.OnClose(c, dialError(c.remote, err))
		return
	}
	c.attach(nc)
	c.mu.Lock()
	aborted := c.aborted
	c.mu.Unlock()
	if aborted {
		// TCP.Close dropped the connection while it was dialing; it promised
		// no more callbacks.
		c.state = connDone
		return
	}
	c.state = connOpen
	c.start()
	c.handler.OnOpen(c)
}

// Send queues frame for the writer. On a closed connection it is dropped; a
// frame too large for the length prefix, or a full send queue, fails the
// connection.
func (c *conn) Send(frame []byte) {
	if c.state == connDone {
		return
	}
	if len(frame) > frameBytesLimit {
		c.fail(fmt.Errorf("net: send %d bytes to %s: %w", len(frame), c.remote, ErrFrameTooLarge))
		return
	}
	c.mu.Lock()
	if c.queuedBytes+len(frame) > c.t.opts.SendQueueBytesMax {
		c.mu.Unlock()
		c.fail(fmt.Errorf("net: send to %s: %w (%d bytes queued)", c.remote, ErrSendQueueFull, c.queuedBytes))
		return
	}
	c.queue = append(c.queue, frame)
	c.queuedBytes += len(frame)
	c.mu.Unlock()
	c.framesQueued++
	c.signal()
}

// FramesQueued returns how many frames Send has queued for the writer. It
// must be called on the loop, like Send.
func (c *conn) FramesQueued() uint64 { return c.framesQueued }

// FramesWritten returns how many queued frames the writer has finished
// writing to the socket, in the order they were queued. A caller that read
// FramesQueued right after sending a frame may reuse that frame's bytes
// once FramesWritten reaches that count: the writer reads a frame only
// before it counts it written (the atomic counter orders the two), which
// lets a node recycle its response buffers without copying them. Frames
// of a connection that failed are never counted. Any goroutine.
func (c *conn) FramesWritten() uint64 { return c.framesWritten.Load() }

func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Close flushes what was sent and closes the socket; OnClose(nil) follows as
// its own callback.
func (c *conn) Close() {
	if c.state == connDone {
		return
	}
	c.state = connDone
	c.mu.Lock()
	c.closing = true
	if c.nc != nil {
		_ = c.nc.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
	} else {
		c.aborted = true // still dialing: nothing to flush
	}
	c.mu.Unlock()
	c.signal()
	c.finish()
	c.t.loop.Post(func() { c.handler.OnClose(c, nil) })
}

// fail ends the connection with err, on the loop: the socket closes at once
// and the handler hears OnClose(err), unless it already ended.
func (c *conn) fail(err error) {
	if c.state == connDone {
		return
	}
	c.state = connDone
	c.abort()
	c.finish()
	c.handler.OnClose(c, err)
}

// postFail hands a reader or writer failure to the loop.
func (c *conn) postFail(err error) {
	if !c.t.loop.Post(func() { c.fail(err) }) {
		c.abort()
	}
}

// abort closes the socket now and stops the writer. Any goroutine.
func (c *conn) abort() {
	c.mu.Lock()
	c.aborted = true
	nc := c.nc
	c.mu.Unlock()
	c.signal()
	c.doneOnce.Do(func() { close(c.done) })
	if nc != nil {
		_ = nc.Close()
	}
}

// finish releases the reader and forgets the connection.
func (c *conn) finish() {
	c.doneOnce.Do(func() { close(c.done) })
	c.ReleaseRecycledFrames()
	c.t.untrack(c)
}

// readLoop reads frames and posts them to the loop. Frames already buffered
// behind the first go out in the same post (at most readBatchFramesMax), so
// small frames do not pay one loop hand-off each. Every frame waiting on the
// loop holds a credit, so at most ReadAheadFramesMax wait there.
func (c *conn) readLoop() {
	r := bufio.NewReaderSize(c.nc, readBufferBytes)
	for {
		batch, err := c.readBatch(r)
		if len(batch) > 0 {
			c.t.loop.Post(func() { c.deliver(batch) })
		}
		if err != nil {
			select {
			case <-c.done: // ended locally; the loop knows
			default:
				c.postFail(err)
			}
			return
		}
	}
}

// readBatch reads one frame, waiting for it and for a credit, then any
// further frames that are already buffered and for which a credit is free.
func (c *conn) readBatch(r *bufio.Reader) ([][]byte, error) {
	frame, err := c.readFrame(r)
	if err != nil {
		return nil, err
	}
	select {
	case c.credits <- struct{}{}:
	case <-c.done:
		return nil, io.EOF
	}
	batch := [][]byte{frame}
	for len(batch) < readBatchFramesMax && c.frameBuffered(r) {
		select {
		case c.credits <- struct{}{}:
		default:
			return batch, nil
		}
		frame, err := c.readFrame(r)
		if err != nil {
			<-c.credits
			return batch, err
		}
		batch = append(batch, frame)
	}
	return batch, nil
}

// frameBuffered reports whether a whole frame sits in the read buffer, so
// reading it cannot block.
func (c *conn) frameBuffered(r *bufio.Reader) bool {
	if r.Buffered() < frameHeaderBytes {
		return false
	}
	header, err := r.Peek(frameHeaderBytes)
	if err != nil {
		return false
	}
	size := int64(int32(binary.BigEndian.Uint32(header)))
	return size >= 0 && int64(r.Buffered()) >= frameHeaderBytes+size
}

// deliver runs on the loop with a batch of received frames.
func (c *conn) deliver(batch [][]byte) {
	for _, frame := range batch {
		<-c.credits
		if c.state == connOpen {
			c.handler.OnFrame(c, frame)
		}
	}
}

// readFrame reads one length-prefixed frame: into a recycled frame large
// enough for it if there is one (io.ReadFull overwrites every byte the
// frame returns, so it needs no clearing), else into a new buffer grown as
// bytes arrive rather than trusting the prefix for one big allocation.
func (c *conn) readFrame(r *bufio.Reader) ([]byte, error) {
	var header [frameHeaderBytes]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return nil, readError(c.remote, err)
	}
	size := int64(int32(binary.BigEndian.Uint32(header[:])))
	if size < 0 || size > int64(c.t.opts.FrameBytesMax) {
		return nil, fmt.Errorf("net: frame of %d bytes from %s, limit %d: %w",
			size, c.remote, c.t.opts.FrameBytesMax, ErrFrameTooLarge)
	}
	if spare := c.takeSpare(int(size)); spare != nil {
		if _, err := io.ReadFull(r, spare); err != nil {
			return nil, readError(c.remote, err)
		}
		c.framesReused.Add(1)
		return spare, nil
	}
	frame := make([]byte, 0, frameCapacity(min(size, frameChunkBytes), size))
	for int64(len(frame)) < size {
		if len(frame) == cap(frame) {
			grown := make([]byte, len(frame), frameCapacity(min(size, int64(cap(frame))*2), size))
			copy(grown, frame)
			frame = grown
		}
		// The capacity may exceed the frame (frameCapacity rounds it up):
		// the bytes past size belong to the next frame.
		n, err := io.ReadFull(r, frame[len(frame):min(int64(cap(frame)), size)])
		frame = frame[:len(frame)+n]
		if err != nil {
			return nil, readError(c.remote, err)
		}
	}
	return frame, nil
}

// frameCapacity is the capacity to allocate for the first want bytes of a
// frame of size bytes: want itself while the frame will grow further, and
// for the whole frame its size rounded up to frameRoundBytes once it is at
// least that large (see frameRoundBytes).
func frameCapacity(want, size int64) int64 {
	if want < size || size < frameRoundBytes {
		return want
	}
	return (size + frameRoundBytes - 1) / frameRoundBytes * frameRoundBytes
}

// takeSpare returns a recycled frame resliced to size bytes, or nil when
// none fits. A spare fits when it holds size bytes and size uses at least
// half of it: a small frame read into a large spare could pin the whole
// spare for as long as the node keeps a slice of that frame (group
// metadata, say), and the frames a node recycles are of one kind and size.
func (c *conn) takeSpare(size int) []byte {
	c.spareMu.Lock()
	defer c.spareMu.Unlock()
	for i, spare := range c.spares {
		if cap(spare) >= size && size >= cap(spare)/2 {
			last := len(c.spares) - 1
			c.spares[i] = c.spares[last]
			c.spares[last] = nil
			c.spares = c.spares[:last]
			return spare[:size]
		}
	}
	return nil
}

// RecycleFrame implements core.FrameRecycler: it keeps frame, which the
// caller no longer references, for the reader to read a later frame into.
// It keeps at most spareFramesMax frames, the largest ones, and none above
// spareFrameBytesMax; a frame it already keeps (recycled twice) is not
// kept again, so that two frames can never share memory. On the loop.
func (c *conn) RecycleFrame(frame []byte) {
	if c.state == connDone || cap(frame) == 0 || cap(frame) > spareFrameBytesMax {
		return
	}
	frame = frame[:cap(frame)]
	c.spareMu.Lock()
	defer c.spareMu.Unlock()
	smallest := -1
	for i, spare := range c.spares {
		if &spare[0] == &frame[0] {
			return
		}
		if smallest < 0 || cap(spare) < cap(c.spares[smallest]) {
			smallest = i
		}
	}
	switch {
	case len(c.spares) < spareFramesMax:
		c.spares = append(c.spares, frame)
	case cap(frame) > cap(c.spares[smallest]):
		c.spares[smallest] = frame
	}
}

// ReleaseRecycledFrames implements core.FrameRecycler: it drops the kept
// frames. Any goroutine.
func (c *conn) ReleaseRecycledFrames() {
	c.spareMu.Lock()
	clear(c.spares)
	c.spares = c.spares[:0]
	c.spareMu.Unlock()
}

// FramesReused returns how many received frames were read into a recycled
// frame rather than a new one. Any goroutine.
func (c *conn) FramesReused() uint64 { return c.framesReused.Load() }

// readError maps a read failure to core.ErrConnReset: the peer closed, reset
// or vanished.
func readError(remote string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("net: %s closed the connection: %w", remote, core.ErrConnReset)
	}
	return fmt.Errorf("net: read from %s: %w: %v", remote, core.ErrConnReset, err)
}

// writeLoop drains the send queue with one writev per batch, until the
// connection is closed (after flushing) or aborted.
func (c *conn) writeLoop() {
	var headers []byte
	// iovecs keeps the backing array of the writev vectors: WriteTo
	// consumes the slice it is called on, so it gets a copy of the header.
	var iovecs stdnet.Buffers
	for {
		batch, closing, ok := c.nextBatch()
		if !ok {
			return
		}
		if len(batch) == 0 && closing {
			_ = c.nc.Close()
			return
		}
		headers = headers[:0]
		iovecs = iovecs[:0]
		batchBytes := 0
		for _, frame := range batch {
			headers = binary.BigEndian.AppendUint32(headers, uint32(len(frame)))
			batchBytes += len(frame)
		}
		for i, frame := range batch {
			iovecs = append(iovecs, headers[i*frameHeaderBytes:(i+1)*frameHeaderBytes], frame)
		}
		buffers := iovecs
		if _, err := buffers.WriteTo(c.nc); err != nil {
			c.postFail(fmt.Errorf("net: write to %s: %w: %v", c.remote, core.ErrConnReset, err))
			_ = c.nc.Close()
			return
		}
		clear(iovecs) // the frames may be reused once counted written
		clear(batch)
		c.mu.Lock()
		c.queuedBytes -= batchBytes
		c.spare = batch[:0]
		c.mu.Unlock()
		c.framesWritten.Add(uint64(len(batch)))
	}
}

// nextBatch waits for frames to write. It returns ok=false when the
// connection was aborted, and closing=true when it should close once the
// returned batch is written.
func (c *conn) nextBatch() (batch [][]byte, closing, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.queue) == 0 && !c.closing && !c.aborted {
		c.mu.Unlock()
		<-c.wake
		c.mu.Lock()
	}
	if c.aborted {
		return nil, false, false
	}
	batch = c.queue
	c.queue, c.spare = c.spare, nil
	return batch, c.closing, true
}
