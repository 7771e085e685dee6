package sim

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestSchedulerOrdersByTimeThenInsertion schedules events out of time order,
// several of them at the same instant, and checks that they run by virtual
// time with ties broken by insertion order, and that time jumps to each event.
func TestSchedulerOrdersByTimeThenInsertion(t *testing.T) {
	s := NewScheduler(1)
	var got []string
	var times []time.Duration
	add := func(d time.Duration, name string) {
		s.After(d, "test", func() {
			got = append(got, name)
			times = append(times, s.Now())
		})
	}
	add(30*time.Millisecond, "c")
	add(10*time.Millisecond, "a1")
	add(20*time.Millisecond, "b")
	add(10*time.Millisecond, "a2")
	add(10*time.Millisecond, "a3")
	add(0, "zero")
	for s.Step() {
	}
	want := []string{"zero", "a1", "a2", "a3", "b", "c"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("order %v, want %v", got, want)
	}
	wantTimes := []time.Duration{0, 10e6, 10e6, 10e6, 20e6, 30e6}
	for i := range wantTimes {
		if times[i] != wantTimes[i] {
			t.Fatalf("event %d ran at %v, want %v", i, times[i], wantTimes[i])
		}
	}
}

// TestRunUntilStopsAtLimit checks that RunUntil runs exactly the events due
// by its limit, leaves later ones queued, and advances time to the limit.
func TestRunUntilStopsAtLimit(t *testing.T) {
	s := NewScheduler(1)
	ran := 0
	for i := 1; i <= 5; i++ {
		s.After(time.Duration(i)*time.Second, "test", func() { ran++ })
	}
	if err := s.RunUntil(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	if ran != 3 || s.Now() != 3*time.Second || s.Pending() != 2 {
		t.Fatalf("ran %d, now %v, pending %d; want 3, 3s, 2", ran, s.Now(), s.Pending())
	}
	if err := s.RunUntil(10 * time.Second); err != nil || ran != 5 || s.Now() != 10*time.Second {
		t.Fatalf("ran %d now %v err %v", ran, s.Now(), err)
	}
}

// TestEventBudgetCatchesLivelock builds a self-rescheduling event chain that
// never ends and checks that the run loops stop with ErrEventsMax after
// exactly the budget, and that RunWhile reports ErrIdle on an empty queue.
func TestEventBudgetCatchesLivelock(t *testing.T) {
	s := NewScheduler(1)
	s.SetEventsMax(1000)
	var loop func()
	loop = func() { s.After(0, "spin", loop) }
	s.After(0, "spin", loop)
	err := s.RunWhile(func() bool { return true })
	if !errors.Is(err, ErrEventsMax) || s.EventsExecuted() != 1000 {
		t.Fatalf("err %v after %d events", err, s.EventsExecuted())
	}
	if err := s.RunUntil(time.Second); !errors.Is(err, ErrEventsMax) {
		t.Fatalf("RunUntil err %v", err)
	}
	idle := NewScheduler(1)
	if err := idle.RunWhile(func() bool { return true }); !errors.Is(err, ErrIdle) {
		t.Fatalf("idle RunWhile err %v", err)
	}
}

// TestCrashDropsNodeEvents schedules timers on two nodes, crashes one, and
// checks that none of the crashed incarnation's timers fire, even after a
// restart, while the other node's timers and the new incarnation's do.
func TestCrashDropsNodeEvents(t *testing.T) {
	s := NewScheduler(1)
	a := s.AddNode("a", NodeOptions{})
	b := s.AddNode("b", NodeOptions{})
	var fired []string
	for i := range 3 {
		d := time.Duration(i+1) * time.Second
		a.Env().Clock.AfterFunc(d, func() { fired = append(fired, "a-old") })
		b.Env().Clock.AfterFunc(d, func() { fired = append(fired, "b") })
	}
	s.After(1500*time.Millisecond, "crash", a.Crash)
	s.After(1600*time.Millisecond, "restart", func() {
		a.Restart()
		a.Env().Clock.AfterFunc(time.Second, func() { fired = append(fired, "a-new") })
	})
	if err := s.RunUntil(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	want := "a-old,b,b,a-new,b"
	if strings.Join(fired, ",") != want {
		t.Fatalf("fired %v, want %s", fired, want)
	}
	if a.Incarnation() != 2 {
		t.Fatalf("incarnation %d, want 2", a.Incarnation())
	}
}

// TestTimerStopSemantics checks core.Timer.Stop: true for a pending timer
// (which then never fires), false for a second Stop, for a timer that already
// fired, and for a timer of a crashed incarnation.
func TestTimerStopSemantics(t *testing.T) {
	s := NewScheduler(1)
	n := s.AddNode("n", NodeOptions{})
	clock := n.Env().Clock
	fired := 0
	pending := clock.AfterFunc(time.Second, func() { fired++ })
	done := clock.AfterFunc(0, func() { fired++ })
	if !s.Step() || fired != 1 {
		t.Fatalf("zero-delay timer did not run as its own event")
	}
	if done.Stop() {
		t.Fatal("Stop of a fired timer returned true")
	}
	if !pending.Stop() {
		t.Fatal("Stop of a pending timer returned false")
	}
	if pending.Stop() {
		t.Fatal("second Stop returned true")
	}
	if s.Pending() != 0 {
		t.Fatalf("stopped timer still queued: %d events", s.Pending())
	}
	doomed := clock.AfterFunc(time.Second, func() { fired++ })
	n.Crash()
	if doomed.Stop() {
		t.Fatal("Stop of a crashed incarnation's timer returned true")
	}
	if err := s.RunUntil(time.Minute); err != nil || fired != 1 {
		t.Fatalf("fired %d, err %v", fired, err)
	}
}

// TestAfterFuncNeverRunsInline checks that AfterFunc with a zero or negative
// delay does not call f before returning.
func TestAfterFuncNeverRunsInline(t *testing.T) {
	s := NewScheduler(1)
	n := s.AddNode("n", NodeOptions{})
	ran := false
	n.Env().Clock.AfterFunc(-time.Second, func() { ran = true })
	if ran {
		t.Fatal("AfterFunc ran f inline")
	}
	s.Step()
	if !ran || s.Now() != 0 {
		t.Fatalf("ran %v at %v", ran, s.Now())
	}
}

// TestStallDefersInOrder stalls a node with several events due during the
// stall and checks that they run at the end of the busy period in their
// original order, ahead of the node's event first due at that instant, while
// another node's events are not delayed.
func TestStallDefersInOrder(t *testing.T) {
	s := NewScheduler(1)
	a := s.AddNode("a", NodeOptions{})
	b := s.AddNode("b", NodeOptions{})
	var got []string
	at := func(n *Node, d time.Duration, name string) {
		n.AfterFunc(d, func() { got = append(got, name+"@"+s.Now().String()) })
	}
	at(a, 100*time.Millisecond, "late") // due exactly when the stall ends
	at(a, 10*time.Millisecond, "x")
	at(a, 20*time.Millisecond, "y")
	at(a, 20*time.Millisecond, "z")
	at(b, 30*time.Millisecond, "other")
	s.After(5*time.Millisecond, "stall", func() { a.Stall(95 * time.Millisecond) })
	if err := s.RunUntil(time.Second); err != nil {
		t.Fatal(err)
	}
	want := "other@30ms,x@100ms,y@100ms,z@100ms,late@100ms"
	if strings.Join(got, ",") != want {
		t.Fatalf("got %v\nwant %s", got, want)
	}
}

// TestPauseHoldsEvents pauses a node, lets its timers come due, and checks
// that nothing runs until Resume, after which they run in order; a timer
// stopped while parked never runs.
func TestPauseHoldsEvents(t *testing.T) {
	s := NewScheduler(1)
	n := s.AddNode("n", NodeOptions{})
	var got []string
	n.AfterFunc(time.Second, func() { got = append(got, "1") })
	stopped := n.AfterFunc(2*time.Second, func() { got = append(got, "stopped") })
	n.AfterFunc(3*time.Second, func() { got = append(got, "3") })
	n.Pause()
	if err := s.RunUntil(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("paused node ran %v", got)
	}
	if !stopped.Stop() {
		t.Fatal("Stop of a parked timer returned false")
	}
	n.Resume()
	if err := s.RunUntil(6 * time.Second); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "1,3" {
		t.Fatalf("got %v, want [1 3]", got)
	}
}

// TestTraceHashCoversDetails checks that the trace hash changes when only a
// Trace detail differs, and that a trace writer receives the same lines
// without changing the hash.
func TestTraceHashCoversDetails(t *testing.T) {
	run := func(detail string, w *strings.Builder) string {
		s := NewScheduler(7)
		if w != nil {
			s.SetTraceWriter(w)
		}
		s.After(time.Second, "test", func() { s.Trace("detail %s", detail) })
		s.Step()
		return s.TraceHash()
	}
	var text strings.Builder
	h1, h2, h3 := run("x", nil), run("x", &text), run("y", nil)
	if h1 != h2 {
		t.Fatal("trace writer changed the hash")
	}
	if h1 == h3 {
		t.Fatal("hash ignores trace details")
	}
	if !strings.Contains(text.String(), "t=1000000000 #0 - test\n    detail x\n") {
		t.Fatalf("trace text %q", text.String())
	}
}

// BenchmarkSchedulerEvents measures the cost of scheduling and running one
// node timer event, trace hashing included.
func BenchmarkSchedulerEvents(b *testing.B) {
	s := NewScheduler(1)
	n := s.AddNode("n", NodeOptions{})
	clock := n.Env().Clock
	var tick func()
	tick = func() { clock.AfterFunc(time.Millisecond, tick) }
	for range 64 {
		clock.AfterFunc(time.Millisecond, tick)
	}
	for b.Loop() {
		s.Step()
	}
}
