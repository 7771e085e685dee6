package net

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	stdnet "net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kafkasim/kafkasim/core"
)

// hangGuard bounds every wait in these tests. It only turns a hang into a
// failure; no test asserts anything about how long something took.
const hangGuard = 30 * time.Second

// harness runs a loop on its own goroutine with a TCP network on it.
type harness struct {
	t     *testing.T
	loop  *Loop
	clock *Clock
	tcp   *TCP
}

func newHarness(t *testing.T, opts TCPOptions) *harness {
	t.Helper()
	loop := NewLoop()
	tcp, err := NewTCP(loop, opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { loop.Run(); close(done) }()
	t.Cleanup(func() {
		tcp.Close()
		loop.Stop()
		<-done
	})
	return &harness{t: t, loop: loop, clock: NewClock(loop), tcp: tcp}
}

// do runs f on the loop and waits for it.
func (h *harness) do(f func()) {
	h.t.Helper()
	ran := make(chan struct{})
	if !h.loop.Post(func() { f(); close(ran) }) {
		h.t.Fatal("loop stopped")
	}
	wait(h.t, ran)
}

func wait[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(hangGuard):
		t.Fatal("hang guard expired")
		panic("unreachable")
	}
}

// connEvent is one callback seen by a chanHandler.
type connEvent struct {
	kind  string // "open", "frame", "close"
	frame []byte
	err   error
}

// chanHandler forwards callbacks to a channel, and fails the test if a
// callback runs off the loop or after OnClose.
type chanHandler struct {
	t       *testing.T
	loop    *Loop
	events  chan connEvent
	conn    core.Conn // set for accepted connections
	closed  bool
	onFrame func(c core.Conn, frame []byte)
}

func newChanHandler(t *testing.T, loop *Loop) *chanHandler {
	return &chanHandler{t: t, loop: loop, events: make(chan connEvent, 1<<16)}
}

func (h *chanHandler) push(e connEvent) {
	if !h.loop.inCallback.Load() {
		h.t.Errorf("%s callback ran off the loop", e.kind)
	}
	if h.closed {
		h.t.Errorf("%s callback after OnClose", e.kind)
	}
	select {
	case h.events <- e:
	default:
		h.t.Errorf("event channel full")
	}
}

func (h *chanHandler) OnOpen(core.Conn) { h.push(connEvent{kind: "open"}) }

func (h *chanHandler) OnFrame(c core.Conn, frame []byte) {
	h.push(connEvent{kind: "frame", frame: frame})
	if h.onFrame != nil {
		h.onFrame(c, frame)
	}
}

func (h *chanHandler) OnClose(_ core.Conn, err error) {
	h.push(connEvent{kind: "close", err: err})
	h.closed = true
}

func (h *chanHandler) next(kind string) connEvent {
	h.t.Helper()
	e := wait(h.t, h.events)
	if e.kind != kind {
		h.t.Fatalf("got %s (err %v), want %s", e.kind, e.err, kind)
	}
	return e
}

// listen starts a listener on 127.0.0.1:0 whose accepted connections get
// chanHandlers, delivered on the returned channel; echo makes them echo.
func (h *harness) listen(echo bool) (core.Listener, chan *chanHandler) {
	h.t.Helper()
	accepted := make(chan *chanHandler, 1024)
	l, err := h.tcp.Listen("127.0.0.1:0", func(c core.Conn) core.ConnHandler {
		ch := newChanHandler(h.t, h.loop)
		ch.conn = c
		if echo {
			ch.onFrame = func(c core.Conn, frame []byte) { c.Send(frame) }
		}
		accepted <- ch
		return ch
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return l, accepted
}

func (h *harness) dial(addr string) (*chanHandler, core.Conn) {
	ch := newChanHandler(h.t, h.loop)
	var c core.Conn
	h.do(func() { c = h.tcp.Dial(addr, ch) })
	return ch, c
}

func testFrame(i, size int) []byte {
	frame := bytes.Repeat([]byte{byte(i)}, size)
	if size >= 8 {
		binary.BigEndian.PutUint64(frame, uint64(i))
	}
	return frame
}

// TestTCPEchoInOrder sends 500 frames of sizes from 0 to about 200 KiB,
// starting before the dial completes, through an echo server, and checks that
// every frame comes back intact and in order, and that the listener reports
// the real port it got for port 0.
func TestTCPEchoInOrder(t *testing.T) {
	h := newHarness(t, TCPOptions{})
	l, _ := h.listen(true)
	if strings.HasSuffix(l.Addr(), ":0") || !strings.HasPrefix(l.Addr(), "127.0.0.1:") {
		t.Fatalf("listener address %q", l.Addr())
	}
	client := newChanHandler(t, h.loop)
	var sent [][]byte
	for i := range 500 {
		sent = append(sent, testFrame(i, (i*i*7919)%(200<<10)))
	}
	h.do(func() {
		c := h.tcp.Dial(l.Addr(), client)
		for _, frame := range sent {
			c.Send(frame)
		}
	})
	client.next("open")
	for i, want := range sent {
		if got := client.next("frame").frame; !bytes.Equal(got, want) {
			t.Fatalf("frame %d: %d bytes back, sent %d", i, len(got), len(want))
		}
	}
}

// TestTCPCloseNotifiesBothEnds closes a connection from the dialing side
// after some frames, and checks that the peer receives them all and then
// OnClose with ErrConnReset, while the closer gets OnClose(nil); then it does
// the same from the accepting side.
func TestTCPCloseNotifiesBothEnds(t *testing.T) {
	h := newHarness(t, TCPOptions{})
	l, accepted := h.listen(false)
	client, c := h.dial(l.Addr())
	client.next("open")
	server := wait(t, accepted)
	h.do(func() {
		for i := range 3 {
			c.Send(testFrame(i, 100))
		}
		c.Close()
		c.Send([]byte("dropped"))
		c.Close()
	})
	for range 3 {
		server.next("frame")
	}
	if e := server.next("close"); !errors.Is(e.err, core.ErrConnReset) {
		t.Fatalf("server close error %v", e.err)
	}
	if e := client.next("close"); e.err != nil {
		t.Fatalf("local close error %v", e.err)
	}

	client2, _ := h.dial(l.Addr())
	client2.next("open")
	server2 := wait(t, accepted)
	h.do(func() {
		server2.conn.Send([]byte("last words"))
		server2.conn.Close()
	})
	if e := server2.next("close"); e.err != nil {
		t.Fatalf("local close error %v", e.err)
	}
	if e := client2.next("frame"); string(e.frame) != "last words" {
		t.Fatalf("client got %q", e.frame)
	}
	if e := client2.next("close"); !errors.Is(e.err, core.ErrConnReset) {
		t.Fatalf("client close error %v", e.err)
	}
}

// TestTCPDialRefused dials a port whose listener was closed and checks that
// OnClose reports ErrConnRefused without OnOpen.
func TestTCPDialRefused(t *testing.T) {
	h := newHarness(t, TCPOptions{})
	l, _ := h.listen(false)
	addr := l.Addr()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	client, _ := h.dial(addr)
	if e := client.next("close"); !errors.Is(e.err, core.ErrConnRefused) {
		t.Fatalf("dial error %v, want ErrConnRefused", e.err)
	}
}

// TestTCPOversizeFrame sends a frame above the receiver's FrameBytesMax, and
// a raw negative size prefix, and checks that the receiver closes each
// connection with ErrFrameTooLarge and the sender sees it closed.
func TestTCPOversizeFrame(t *testing.T) {
	h := newHarness(t, TCPOptions{FrameBytesMax: 1024})
	l, accepted := h.listen(false)
	client, c := h.dial(l.Addr())
	client.next("open")
	server := wait(t, accepted)
	h.do(func() {
		c.Send(make([]byte, 1024))
		c.Send(make([]byte, 1025))
	})
	if e := server.next("frame"); len(e.frame) != 1024 {
		t.Fatalf("frame at the limit: %d bytes", len(e.frame))
	}
	if e := server.next("close"); !errors.Is(e.err, ErrFrameTooLarge) {
		t.Fatalf("server close error %v", e.err)
	}
	if e := client.next("close"); !errors.Is(e.err, core.ErrConnReset) {
		t.Fatalf("client close error %v", e.err)
	}

	raw, err := stdnet.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rawServer := wait(t, accepted)
	if _, err := raw.Write([]byte{0x80, 0, 0, 0, 1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if e := rawServer.next("close"); !errors.Is(e.err, ErrFrameTooLarge) {
		t.Fatalf("negative size: close error %v", e.err)
	}
	readDone := make(chan error, 1)
	go func() {
		_, err := raw.Read(make([]byte, 1))
		readDone <- err
	}()
	if err := wait(t, readDone); err == nil {
		t.Fatal("raw peer could still read after the negative size")
	}
}

// TestTCPManyConnections opens 64 connections at once, sends 20 frames on
// each through an echo server, and checks every connection gets its own
// frames back in order, then closes them all and checks the network forgets
// them.
func TestTCPManyConnections(t *testing.T) {
	h := newHarness(t, TCPOptions{})
	l, accepted := h.listen(true)
	const conns, frames = 64, 20
	clients := make([]*chanHandler, conns)
	cs := make([]core.Conn, conns)
	h.do(func() {
		for i := range clients {
			clients[i] = newChanHandler(t, h.loop)
			cs[i] = h.tcp.Dial(l.Addr(), clients[i])
			for j := range frames {
				cs[i].Send([]byte(fmt.Sprintf("%d/%d", i, j)))
			}
		}
	})
	for i, client := range clients {
		client.next("open")
		for j := range frames {
			if got, want := string(client.next("frame").frame), fmt.Sprintf("%d/%d", i, j); got != want {
				t.Fatalf("conn %d got %q, want %q", i, got, want)
			}
		}
	}
	h.do(func() {
		for _, c := range cs {
			c.Close()
		}
	})
	for _, client := range clients {
		client.next("close")
	}
	for range conns {
		server := wait(t, accepted)
		for range frames {
			server.next("frame")
		}
		server.next("close")
	}
	var open int
	h.do(func() { open = h.tcp.OpenConns() })
	if open != 0 {
		t.Fatalf("%d connections still tracked", open)
	}
}

// TestTCPAcceptRefusal checks that a listener whose accept returns nil
// closes the connection, and the dialer sees it closed.
func TestTCPAcceptRefusal(t *testing.T) {
	h := newHarness(t, TCPOptions{})
	l, err := h.tcp.Listen("127.0.0.1:0", func(core.Conn) core.ConnHandler { return nil })
	if err != nil {
		t.Fatal(err)
	}
	client, c := h.dial(l.Addr())
	client.next("open")
	h.do(func() { c.Send([]byte("anyone?")) })
	if e := client.next("close"); !errors.Is(e.err, core.ErrConnReset) {
		t.Fatalf("close error %v", e.err)
	}
}

// TestTCPBadOptionsAndAddresses checks that bad options and addresses are
// errors, not panics.
func TestTCPBadOptionsAndAddresses(t *testing.T) {
	if _, err := NewTCP(NewLoop(), TCPOptions{FrameBytesMax: -1}); err == nil {
		t.Error("negative FrameBytesMax accepted")
	}
	h := newHarness(t, TCPOptions{})
	if _, err := h.tcp.Listen("not an address", func(core.Conn) core.ConnHandler { return nil }); err == nil {
		t.Error("bad listen address accepted")
	}
	client, _ := h.dial("127.0.0.1:notaport")
	if e := client.next("close"); e.err == nil {
		t.Error("dial to a bad address reported no error")
	}
}

// TestTimerStopWhileCallbackQueued blocks the loop until a timer's
// underlying time.Timer has fired and queued its callback, then stops it, and
// checks that Stop returns true and the callback never runs; it also checks
// that a pending timer stops and an already-run timer does not.
func TestTimerStopWhileCallbackQueued(t *testing.T) {
	h := newHarness(t, TCPOptions{})
	var fired atomic.Int32
	var stopped bool
	h.do(func() {
		tm := h.clock.AfterFunc(time.Millisecond, func() { fired.Add(1) })
		// Hold the loop until the timer's callback is queued behind us.
		deadline := time.Now().Add(hangGuard)
		for h.loop.queued() == 0 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Microsecond)
		}
		stopped = tm.Stop()
	})
	h.do(func() {}) // let the queued callback run (and do nothing)
	if !stopped || fired.Load() != 0 {
		t.Fatalf("Stop returned %v, callback ran %d times", stopped, fired.Load())
	}

	ran := make(chan struct{})
	var pendingStopped, doneStopped bool
	h.do(func() {
		pending := h.clock.AfterFunc(time.Hour, func() { t.Error("stopped timer ran") })
		pendingStopped = pending.Stop()
		h.clock.AfterFunc(0, func() { close(ran) })
	})
	wait(t, ran)
	h.do(func() {
		done := h.clock.AfterFunc(0, func() {})
		h.loop.Post(func() { doneStopped = done.Stop() })
	})
	h.do(func() {})
	if !pendingStopped || doneStopped {
		t.Fatalf("pending Stop %v (want true), fired Stop %v (want false)", pendingStopped, doneStopped)
	}
}

// TestLoopRunsInPostOrder posts from several goroutines and checks that each
// goroutine's functions run in its order, one at a time, and that Post fails
// after Stop.
func TestLoopRunsInPostOrder(t *testing.T) {
	loop := NewLoop()
	done := make(chan struct{})
	go func() { loop.Run(); close(done) }()
	const writers, posts = 4, 1000
	last := make([]int, writers) // touched only on the loop
	finished := make(chan struct{}, writers)
	for w := range writers {
		go func() {
			for i := range posts {
				loop.Post(func() {
					if last[w] != i {
						t.Errorf("writer %d: ran %d after %d", w, i, last[w]-1)
					}
					last[w] = i + 1
					if i == posts-1 {
						finished <- struct{}{}
					}
				})
			}
		}()
	}
	for range writers {
		wait(t, finished)
	}
	loop.Stop()
	wait(t, done)
	if loop.Post(func() {}) {
		t.Fatal("Post accepted after Stop")
	}
}

// BenchmarkTCPThroughput measures one-way frame throughput over loopback
// through the loop, for small and large frames. The sender works in rounds of
// at most roundBytes so the send queue stays within its bound.
func BenchmarkTCPThroughput(b *testing.B) {
	const roundBytes = 16 << 20
	for _, size := range []int{100, 1 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			h := newBenchHarness(b)
			roundDone := make(chan struct{}, 1)
			var count, want int // touched only on the loop
			l, err := h.tcp.Listen("127.0.0.1:0", func(core.Conn) core.ConnHandler {
				return handlerFuncs{frame: func(core.Conn, []byte) {
					count++
					if count == want {
						roundDone <- struct{}{}
					}
				}}
			})
			if err != nil {
				b.Fatal(err)
			}
			opened := make(chan core.Conn, 1)
			h.loop.Post(func() {
				h.tcp.Dial(l.Addr(), handlerFuncs{open: func(c core.Conn) { opened <- c }})
			})
			c := <-opened
			frame := make([]byte, size)
			perRound := max(1, roundBytes/size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			for sent := 0; sent < b.N; {
				n := min(perRound, b.N-sent)
				sent += n
				h.loop.Post(func() {
					want = sent
					for range n {
						c.Send(frame)
					}
				})
				<-roundDone
			}
		})
	}
}

// BenchmarkTCPRoundTrip measures request/response latency of one frame of
// 100 bytes over loopback.
func BenchmarkTCPRoundTrip(b *testing.B) {
	h := newBenchHarness(b)
	l, err := h.tcp.Listen("127.0.0.1:0", func(core.Conn) core.ConnHandler {
		return handlerFuncs{frame: func(c core.Conn, f []byte) { c.Send(f) }}
	})
	if err != nil {
		b.Fatal(err)
	}
	replies := make(chan struct{}, 1)
	opened := make(chan core.Conn, 1)
	h.loop.Post(func() {
		h.tcp.Dial(l.Addr(), handlerFuncs{
			open:  func(c core.Conn) { opened <- c },
			frame: func(core.Conn, []byte) { replies <- struct{}{} },
		})
	})
	c := <-opened
	frame := make([]byte, 100)
	for b.Loop() {
		h.loop.Post(func() { c.Send(frame) })
		<-replies
	}
}

type benchHarness struct {
	loop *Loop
	tcp  *TCP
}

func newBenchHarness(b *testing.B) *benchHarness {
	loop := NewLoop()
	tcp, err := NewTCP(loop, TCPOptions{})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { loop.Run(); close(done) }()
	b.Cleanup(func() { tcp.Close(); loop.Stop(); <-done })
	return &benchHarness{loop: loop, tcp: tcp}
}

// handlerFuncs adapts functions to core.ConnHandler for benchmarks.
type handlerFuncs struct {
	open  func(core.Conn)
	frame func(core.Conn, []byte)
}

func (h handlerFuncs) OnOpen(c core.Conn) {
	if h.open != nil {
		h.open(c)
	}
}

func (h handlerFuncs) OnFrame(c core.Conn, f []byte) {
	if h.frame != nil {
		h.frame(c, f)
	}
}

func (h handlerFuncs) OnClose(core.Conn, error) {}
