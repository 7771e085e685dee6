package core

import "errors"

// ErrConnRefused is reported when nothing listens at a dialed address.
var ErrConnRefused = errors.New("connection refused")

// ErrConnReset is reported when a connection breaks: the peer crashed or reset
// it, or the network between the two failed.
var ErrConnReset = errors.New("connection reset")

// ErrTimeout is reported when a dial could not complete in time, for example
// across a network partition.
var ErrTimeout = errors.New("i/o timeout")

// Network connects nodes with connections that carry frames: byte strings
// delivered whole, in order, at most once, like the size-delimited messages of
// the Kafka protocol over TCP. A connection delivers a prefix of the frames
// sent on it: once a frame is lost the connection breaks and both ends are
// told. Addresses are "host:port" strings.
//
// All handler callbacks run on the owning node's event loop.
type Network interface {
	// Listen accepts connections at addr. For each accepted connection, accept
	// is called on the event loop and returns the handler for its events
	// (OnOpen is not called for accepted connections). A listener stops with
	// its node.
	Listen(addr string, accept func(Conn) ConnHandler) (Listener, error)

	// Dial starts connecting to addr and returns at once. Later, exactly one of
	// h.OnOpen (the connection is established) or h.OnClose (it failed, with
	// ErrConnRefused, ErrTimeout or ErrConnReset) is called first. Frames sent
	// before OnOpen are queued and sent once the connection opens.
	Dial(addr string, h ConnHandler) Conn
}

// Listener accepts connections at one address.
type Listener interface {
	// Addr returns the address the listener is bound to. It differs from the
	// requested address when that named port 0.
	Addr() string
	// Close stops accepting connections. Established connections stay open.
	Close() error
}

// Conn is one end of a connection.
type Conn interface {
	// Send queues frame for delivery to the peer. The network takes ownership
	// of frame: the caller must not modify it afterwards. Send never blocks and
	// never fails; on a closed or broken connection the frame is dropped (the
	// handler learns about the break through OnClose).
	Send(frame []byte)

	// Close closes the connection. The peer's OnClose is called with
	// ErrConnReset or a similar error; the local OnClose is called with nil,
	// unless the connection had already closed.
	Close()

	// LocalAddr and RemoteAddr identify the two ends.
	LocalAddr() string
	RemoteAddr() string
}

// FrameRecycler is implemented by connections that can reuse the memory of
// frames they delivered: the production network (net.TCP) reads the next
// frame into a recycled one instead of allocating and zeroing a new one,
// which a CPU profile of the broker under a produce load showed to cost
// about a quarter of its CPU (the allocation, its zeroing and the garbage
// collection it drives; docs/performance.md, "Recycled produce frames").
// It is optional: a node asks for it with a type assertion and behaves the
// same without it, so that the simulated network, which does not implement
// it, runs exactly the code the production network runs.
type FrameRecycler interface {
	// RecycleFrame hands back a frame that OnFrame delivered on this
	// connection. The caller promises that nothing references frame any
	// more, neither the slice nor any slice or value aliasing its bytes:
	// the network may overwrite it with the next frame at once, from
	// another goroutine. Call it at most once per frame, on the event loop.
	// A connection that ended drops the frame.
	RecycleFrame(frame []byte)
	// ReleaseRecycledFrames drops the frames kept for reuse, so that an
	// idle connection gives their memory back.
	ReleaseRecycledFrames()
}

// ConnHandler receives the events of one connection. Each method runs on the
// node's event loop.
type ConnHandler interface {
	// OnOpen is called once when a dialed connection is established.
	OnOpen(c Conn)
	// OnFrame is called for every frame received, in order. The handler owns
	// frame.
	OnFrame(c Conn, frame []byte)
	// OnClose is called exactly once when the connection ends, with nil after
	// a local Close and an error otherwise. No callback of c follows it.
	OnClose(c Conn, err error)
}
