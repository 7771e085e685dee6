package sim

import (
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/kafkasim/kafkasim/core"
)

// recorder is a ConnHandler that records what happened to one connection and
// fails the test on a contract violation: callbacks after OnClose, a second
// OnOpen, frames before OnOpen on a dialed connection.
type recorder struct {
	t       *testing.T
	dialed  bool
	opened  int
	frames  []string
	closed  int
	err     error
	onFrame func(c core.Conn, frame []byte)
}

func (r *recorder) OnOpen(core.Conn) {
	if r.opened > 0 || r.closed > 0 || !r.dialed {
		r.t.Errorf("OnOpen after open=%d close=%d dialed=%v", r.opened, r.closed, r.dialed)
	}
	r.opened++
}

func (r *recorder) OnFrame(c core.Conn, frame []byte) {
	if r.closed > 0 || (r.dialed && r.opened == 0) {
		r.t.Errorf("OnFrame %q out of place (open=%d close=%d)", frame, r.opened, r.closed)
	}
	r.frames = append(r.frames, string(frame))
	if r.onFrame != nil {
		r.onFrame(c, frame)
	}
}

func (r *recorder) OnClose(_ core.Conn, err error) {
	if r.closed > 0 {
		r.t.Errorf("second OnClose (%v)", err)
	}
	r.closed++
	r.err = err
}

// pair builds a scheduler with nodes a and b, b listening on b:9000 with a
// recorder per accepted connection (echoing when echo is set).
func pair(t *testing.T, echo bool) (*Scheduler, *Node, *Node, *[]*recorder) {
	s := NewScheduler(42)
	a := s.AddNode("a", NodeOptions{})
	b := s.AddNode("b", NodeOptions{})
	var accepted []*recorder
	_, err := b.Env().Net.Listen("b:9000", func(c core.Conn) core.ConnHandler {
		r := &recorder{t: t}
		if echo {
			r.onFrame = func(c core.Conn, frame []byte) { c.Send(frame) }
		}
		accepted = append(accepted, r)
		return r
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, a, b, &accepted
}

func dial(t *testing.T, n *Node, addr string) (*recorder, core.Conn) {
	r := &recorder{t: t, dialed: true}
	return r, n.Env().Net.Dial(addr, r)
}

// TestNetworkDeliversInOrder sends 200 frames (half queued before the dial
// completes) over links with widely varying delay, echoes them, and checks
// that both directions deliver every frame exactly once, in order.
func TestNetworkDeliversInOrder(t *testing.T) {
	s, a, _, accepted := pair(t, true)
	if err := s.Network().SetDefaultLink(LinkConfig{DelayMin: time.Millisecond, DelayMax: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	r, c := dial(t, a, "b:9000")
	var want []string
	for i := range 200 {
		want = append(want, strconv.Itoa(i))
		if i == 100 {
			if err := s.RunUntil(time.Second); err != nil {
				t.Fatal(err)
			}
		}
		c.Send([]byte(strconv.Itoa(i)))
	}
	if err := s.RunUntil(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if r.opened != 1 || len(*accepted) != 1 {
		t.Fatalf("opened %d, accepted %d", r.opened, len(*accepted))
	}
	if fmt.Sprint((*accepted)[0].frames) != fmt.Sprint(want) || fmt.Sprint(r.frames) != fmt.Sprint(want) {
		t.Fatalf("server got %v\nclient got %v", (*accepted)[0].frames, r.frames)
	}
	if c.LocalAddr() == "" || c.RemoteAddr() != "b:9000" {
		t.Fatalf("addresses %q %q", c.LocalAddr(), c.RemoteAddr())
	}
}

// TestNetworkLossBreaksConnection delivers some frames, then makes the link
// lose everything, and checks that the frames sent before the loss arrive,
// none after it, and both ends see ErrConnReset after the break timeout.
func TestNetworkLossBreaksConnection(t *testing.T) {
	s, a, b, accepted := pair(t, false)
	r, c := dial(t, a, "b:9000")
	c.Send([]byte("kept"))
	if err := s.RunUntil(time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.Network().SetLink(a, b, LinkConfig{DelayMax: time.Millisecond, LossProbability: 1}); err != nil {
		t.Fatal(err)
	}
	c.Send([]byte("lost"))
	c.Send([]byte("after"))
	if err := s.RunUntil(time.Second + breakTimeoutDefault - time.Millisecond); err != nil {
		t.Fatal(err)
	}
	server := (*accepted)[0]
	if r.closed != 0 || server.closed != 0 {
		t.Fatal("connection reported broken before the break timeout")
	}
	if err := s.RunUntil(time.Minute); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(server.frames) != "[kept]" {
		t.Fatalf("server got %v", server.frames)
	}
	if !errors.Is(r.err, core.ErrConnReset) || !errors.Is(server.err, core.ErrConnReset) {
		t.Fatalf("close errors %v / %v", r.err, server.err)
	}
}

// TestNetworkPartitions checks dials and connections across cuts: a dial
// over a cut in either direction fails with ErrTimeout after the dial
// timeout, an established connection breaks when it sends over a one-way cut,
// and after healing a dial succeeds.
func TestNetworkPartitions(t *testing.T) {
	s, a, b, accepted := pair(t, false)
	nw := s.Network()
	established, ec := dial(t, a, "b:9000")
	if err := s.RunUntil(time.Second); err != nil || established.opened != 1 {
		t.Fatalf("setup: opened %d err %v", established.opened, err)
	}
	nw.Cut(a, b)
	forward, _ := dial(t, a, "b:9000")
	ec.Send([]byte("x"))
	nw.Heal(a, b)
	nw.Cut(b, a)
	backward, _ := dial(t, a, "b:9000")
	if err := s.RunUntil(time.Second + dialTimeoutDefault - time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if forward.closed != 0 || backward.closed != 0 {
		t.Fatal("dial failed before the dial timeout")
	}
	if err := s.RunUntil(time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*recorder{"forward": forward, "backward": backward} {
		if !errors.Is(r.err, core.ErrTimeout) || r.opened != 0 {
			t.Fatalf("%s dial: opened %d, err %v", name, r.opened, r.err)
		}
	}
	if !errors.Is(established.err, core.ErrConnReset) || len((*accepted)[0].frames) != 0 {
		t.Fatalf("established: err %v, frames %v", established.err, (*accepted)[0].frames)
	}
	nw.HealAll()
	healed, _ := dial(t, a, "b:9000")
	if err := s.RunFor(time.Second); err != nil || healed.opened != 1 {
		t.Fatalf("dial after heal: opened %d err %v", healed.opened, err)
	}
}

// TestNetworkRefusedDials checks that dials to a port nobody listens on, to
// an unknown host, to a malformed address and to a crashed node all fail with
// ErrConnRefused and never open.
func TestNetworkRefusedDials(t *testing.T) {
	s, a, b, _ := pair(t, false)
	b.Crash()
	addrs := []string{"a:1234", "nowhere:9000", "no-port", "b:9000"}
	var rs []*recorder
	for _, addr := range addrs {
		r, _ := dial(t, a, addr)
		rs = append(rs, r)
	}
	if err := s.RunUntil(time.Minute); err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if r.opened != 0 || r.closed != 1 || !errors.Is(r.err, core.ErrConnRefused) {
			t.Errorf("dial %q: opened %d closed %d err %v", addrs[i], r.opened, r.closed, r.err)
		}
	}
}

// TestNetworkCrashResetsPeer connects a to b, crashes b, and checks that a
// sees ErrConnReset, b's handler hears nothing more, and b's listener is gone
// after a restart until it listens again.
func TestNetworkCrashResetsPeer(t *testing.T) {
	s, a, b, accepted := pair(t, false)
	r, c := dial(t, a, "b:9000")
	if err := s.RunUntil(time.Second); err != nil {
		t.Fatal(err)
	}
	c.Send([]byte("in flight"))
	b.Crash()
	b.Restart()
	if err := s.RunUntil(time.Minute); err != nil {
		t.Fatal(err)
	}
	server := (*accepted)[0]
	if !errors.Is(r.err, core.ErrConnReset) || server.closed != 0 || len(server.frames) != 0 {
		t.Fatalf("client err %v; server closed %d frames %v", r.err, server.closed, server.frames)
	}
	again, _ := dial(t, a, "b:9000")
	if err := s.RunFor(time.Second); err != nil || !errors.Is(again.err, core.ErrConnRefused) {
		t.Fatalf("dial to restarted node without listener: err %v", again.err)
	}
}

// TestNetworkCloseDeliversInFlightFirst sends frames then closes, and checks
// that the peer receives all of them before OnClose(ErrConnReset), while the
// closing end gets OnClose(nil) and nothing after.
func TestNetworkCloseDeliversInFlightFirst(t *testing.T) {
	s, a, _, accepted := pair(t, false)
	r, c := dial(t, a, "b:9000")
	if err := s.RunUntil(time.Second); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		c.Send([]byte(strconv.Itoa(i)))
	}
	c.Close()
	c.Close()
	c.Send([]byte("after close"))
	if err := s.RunUntil(time.Minute); err != nil {
		t.Fatal(err)
	}
	server := (*accepted)[0]
	if len(server.frames) != 10 || !errors.Is(server.err, core.ErrConnReset) {
		t.Fatalf("server frames %v err %v", server.frames, server.err)
	}
	if r.closed != 1 || r.err != nil {
		t.Fatalf("client closed %d err %v", r.closed, r.err)
	}
}

// TestNetworkInflightBound sets a small in-flight limit, sends more than it
// allows in one burst, and checks that the connection breaks instead of
// buffering, both while dialing and once open.
func TestNetworkInflightBound(t *testing.T) {
	s, a, _, accepted := pair(t, false)
	if err := s.Network().Configure(NetworkOptions{ConnInflightBytesMax: 1000}); err != nil {
		t.Fatal(err)
	}
	queued, qc := dial(t, a, "b:9000")
	open, oc := dial(t, a, "b:9000")
	for range 11 {
		qc.Send(make([]byte, 100))
	}
	if err := s.RunUntil(time.Second); err != nil || open.opened != 1 {
		t.Fatalf("opened %d err %v", open.opened, err)
	}
	for range 11 {
		oc.Send(make([]byte, 100))
	}
	if err := s.RunUntil(time.Minute); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(queued.err, core.ErrConnReset) || !errors.Is(open.err, core.ErrConnReset) {
		t.Fatalf("errors %v / %v", queued.err, open.err)
	}
	for _, server := range *accepted {
		if len(server.frames) > 10 {
			t.Fatalf("server received %d frames beyond the limit", len(server.frames))
		}
	}
}

// TestNetworkResetInjection resets the connections between two nodes and
// checks that both ends see ErrConnReset and OpenConns drops to zero.
func TestNetworkResetInjection(t *testing.T) {
	s, a, b, accepted := pair(t, false)
	r1, _ := dial(t, a, "b:9000")
	r2, _ := dial(t, a, "b:9000")
	if err := s.RunUntil(time.Second); err != nil || s.Network().OpenConns() != 2 {
		t.Fatalf("open %d err %v", s.Network().OpenConns(), err)
	}
	if n := s.Network().ResetConnections(b, a); n != 2 {
		t.Fatalf("reset %d connections, want 2", n)
	}
	if s.Network().ResetRandom() {
		t.Fatal("ResetRandom found a connection to reset")
	}
	if err := s.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	for _, r := range append([]*recorder{r1, r2}, *accepted...) {
		if !errors.Is(r.err, core.ErrConnReset) {
			t.Fatalf("close error %v", r.err)
		}
	}
}

// TestListenAddresses checks port 0 allocation, the reported address, and
// that bad listen addresses get errors rather than panics.
func TestListenAddresses(t *testing.T) {
	s := NewScheduler(1)
	n := s.AddNode("n", NodeOptions{})
	accept := func(core.Conn) core.ConnHandler { return &recorder{t: t} }
	l, err := n.Env().Net.Listen("n:0", accept)
	if err != nil || l.Addr() != "n:"+strconv.Itoa(portEphemeralFirst) {
		t.Fatalf("listen n:0: %v, addr %v", err, l)
	}
	l2, err := n.Env().Net.Listen(":0", accept)
	if err != nil || l2.Addr() == l.Addr() {
		t.Fatalf("second port-0 listener: %v", err)
	}
	for _, bad := range []string{"other:1", "n:99999", "n", "n:x", l.Addr()} {
		if _, err := n.Env().Net.Listen(bad, accept); err == nil {
			t.Errorf("Listen(%q) succeeded", bad)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Env().Net.Listen(l.Addr(), accept); err != nil {
		t.Fatalf("listen after close: %v", err)
	}
}
