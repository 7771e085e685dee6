package sim

import (
	"strings"
	"testing"
	"time"

	"github.com/kafkasim/kafkasim/core"
)

// openPair connects a to b:9000 and returns both ends, each with its
// recorder.
func openPair(t *testing.T) (s *Scheduler, a, b *Node, dialer *recorder, dialerConn core.Conn, acceptor *recorder, acceptorConn core.Conn) {
	t.Helper()
	s = NewScheduler(11)
	a = s.AddNode("a", NodeOptions{})
	b = s.AddNode("b", NodeOptions{})
	acceptor = &recorder{t: t}
	if _, err := b.Env().Net.Listen("b:9000", func(c core.Conn) core.ConnHandler {
		acceptorConn = c
		return acceptor
	}); err != nil {
		t.Fatal(err)
	}
	dialer, dialerConn = dial(t, a, "b:9000")
	if err := s.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if dialer.opened != 1 || acceptorConn == nil {
		t.Fatal("the connection did not open")
	}
	return s, a, b, dialer, dialerConn, acceptor, acceptorConn
}

// TestNetworkBlackholeIsOneWay blackholes a->b on an open connection and
// checks that a's frames stop arriving while b's arrive, that nobody's
// connection breaks, that new dials a->b time out, and that Heal delivers
// what was held, in order and before what a sends next, as TCP's
// retransmission does: never a later frame without the earlier ones.
func TestNetworkBlackholeIsOneWay(t *testing.T) {
	s, a, b, dialer, dialerConn, acceptor, acceptorConn := openPair(t)
	nw := s.Network()
	nw.Blackhole(a, b)
	dialerConn.Send([]byte("a1"))
	dialerConn.Send([]byte("a2"))
	acceptorConn.Send([]byte("b1"))
	lateDial, _ := dial(t, a, "b:9000")
	if err := s.RunFor(time.Minute); err != nil {
		t.Fatal(err)
	}
	if len(acceptor.frames) != 0 || len(dialer.frames) != 1 || dialer.frames[0] != "b1" {
		t.Errorf("b got %v, a got %v; want nothing at b, [b1] at a", acceptor.frames, dialer.frames)
	}
	if dialer.closed != 0 || acceptor.closed != 0 {
		t.Errorf("the blackhole broke the connection (a closed %d, b closed %d)", dialer.closed, acceptor.closed)
	}
	if errName(lateDial.err) != "timeout" {
		t.Errorf("dial across the blackhole ended with %v, want a timeout", lateDial.err)
	}
	if got := nw.Stats().FramesBlackholed; got != 2 {
		t.Errorf("FramesBlackholed = %d, want 2", got)
	}
	nw.Heal(a, b)
	dialerConn.Send([]byte("a3"))
	if err := s.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(acceptor.frames, ","); got != "a1,a2,a3" {
		t.Errorf("after Heal b got %s, want a1,a2,a3", got)
	}
}

// TestNetworkBlackholeHeldFramesDieWithTheConnection checks that frames a
// blackhole holds are never delivered once their connection was reset.
func TestNetworkBlackholeHeldFramesDieWithTheConnection(t *testing.T) {
	s, a, b, dialer, dialerConn, acceptor, _ := openPair(t)
	nw := s.Network()
	nw.Blackhole(a, b)
	dialerConn.Send([]byte("stale"))
	if err := s.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if n := nw.ResetConnections(a, b); n != 1 {
		t.Fatalf("reset %d connections, want 1", n)
	}
	nw.Heal(a, b)
	if err := s.RunFor(time.Minute); err != nil {
		t.Fatal(err)
	}
	if dialer.closed != 1 || acceptor.closed != 1 {
		t.Errorf("after the reset a closed %d times, b %d times; want 1 each", dialer.closed, acceptor.closed)
	}
	if got := strings.Join(acceptor.frames, ","); got != "" {
		t.Errorf("the reset connection delivered %s after the heal", got)
	}
}

// TestNetworkPowerOffIsSilent powers b off and checks that a's connection
// stays open while a's frames vanish, frames b sent before delivered, that
// dials to b time out instead of being refused, and that once b is back its
// kernel resets the stale connection at a's next frame.
func TestNetworkPowerOffIsSilent(t *testing.T) {
	s, a, b, dialer, dialerConn, _, acceptorConn := openPair(t)
	nw := s.Network()
	acceptorConn.Send([]byte("last words"))
	b.PowerOff()
	dialerConn.Send([]byte("into the void"))
	lateDial, _ := dial(t, a, "b:9000")
	if err := s.RunFor(time.Hour); err != nil {
		t.Fatal(err)
	}
	if dialer.closed != 0 {
		t.Fatalf("a saw its connection close (%v) after b lost power", dialer.err)
	}
	if len(dialer.frames) != 1 || dialer.frames[0] != "last words" {
		t.Errorf("a got %v, want the frame b sent before the power-off", dialer.frames)
	}
	if errName(lateDial.err) != "timeout" {
		t.Errorf("dial to a powered-off host ended with %v, want a timeout", lateDial.err)
	}
	stats := nw.Stats()
	if stats.PowerOffs != 1 || stats.ConnsLeftOpenByPowerOff != 1 || stats.FramesToPoweredOff != 1 || stats.DialsToPoweredOff != 1 {
		t.Errorf("stats = %+v", stats)
	}
	b.Restart()
	dialerConn.Send([]byte("hello again"))
	if err := s.RunFor(time.Minute); err != nil {
		t.Fatal(err)
	}
	if errName(dialer.err) != "reset" {
		t.Errorf("after b restarted, a's frame ended with %v, want a reset", dialer.err)
	}
}

// TestNetworkPowerOffDuringDial checks that a dial whose SYN is in flight
// when the target powers off times out.
func TestNetworkPowerOffDuringDial(t *testing.T) {
	s, _, b, _ := pair(t, false)
	a := s.Node("a")
	r, _ := dial(t, a, "b:9000")
	b.PowerOff()
	if err := s.RunFor(time.Minute); err != nil {
		t.Fatal(err)
	}
	if errName(r.err) != "timeout" || r.closed != 1 {
		t.Errorf("dial ended with %v (closed %d), want one timeout", r.err, r.closed)
	}
}
