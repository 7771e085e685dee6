package net

import (
	"errors"
	stdnet "net"
	"syscall"
	"testing"

	"github.com/kafkasim/kafkasim/core"
)

// TestTCPBindThenListenAdoptsTheSocket binds a port, connects and sends a
// frame before anything listens (the connection waits in the kernel's
// backlog, as clients of a recovering broker do), then checks that Listen on
// the same address adopts the socket: the early connection is accepted and
// its frame delivered, on the port Bind reported.
func TestTCPBindThenListenAdoptsTheSocket(t *testing.T) {
	h := newHarness(t, TCPOptions{})
	bound, err := h.tcp.Bind("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	early, err := stdnet.Dial("tcp", bound)
	if err != nil {
		t.Fatalf("dial before Listen: %v", err)
	}
	defer early.Close()
	if _, err := early.Write([]byte{0, 0, 0, 3, 'a', 'b', 'c'}); err != nil {
		t.Fatal(err)
	}

	accepted := make(chan *chanHandler, 1)
	var l core.Listener
	h.do(func() {
		l, err = h.tcp.Listen("127.0.0.1:0", func(c core.Conn) core.ConnHandler {
			ch := newChanHandler(t, h.loop)
			accepted <- ch
			return ch
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if l.Addr() != bound {
		t.Fatalf("Listen serves %s, Bind bound %s", l.Addr(), bound)
	}
	ch := wait(t, accepted)
	if frame := ch.next("frame").frame; string(frame) != "abc" {
		t.Fatalf("frame %q, want abc", frame)
	}
}

// TestTCPBindErrors checks the errors of Bind: a port in use is a BindError
// that matches EADDRINUSE and reads as one short line, and a socket bound
// but never adopted is released by Close.
func TestTCPBindErrors(t *testing.T) {
	h := newHarness(t, TCPOptions{})
	bound, err := h.tcp.Bind("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	other := newHarness(t, TCPOptions{})
	_, err = other.tcp.Bind(bound)
	var bindErr *BindError
	if !errors.As(err, &bindErr) || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("second Bind: %v; want a BindError matching EADDRINUSE", err)
	}
	if want := "listen on " + bound + ": address already in use"; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	if _, err := h.tcp.Bind("127.0.0.1:0"); err == nil || err.Error() != "listen on 127.0.0.1:0: bound twice" {
		t.Fatalf("Bind of the same address string twice: %v", err)
	}

	h.tcp.Close()
	again, err := other.tcp.Bind(bound)
	if err != nil || again != bound {
		t.Fatalf("Bind after Close released the socket = %s, %v", again, err)
	}
}
