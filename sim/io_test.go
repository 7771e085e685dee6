package sim

import (
	"testing"
	"time"
)

// ioTestLatency is the latency of every job in the IO tests: drawn from
// [ioTestLatency, 2×ioTestLatency].
const ioTestLatency = 10 * time.Millisecond

// TestIOStallHoldsCompletions submits jobs around a stall and checks when
// each completes: a job whose latency ends during the stall (submitted
// before it or during it) completes exactly at its end, one whose latency
// ends after it keeps its own time, and none completes inside the stall,
// also on a node whose clock runs fast or slow.
func TestIOStallHoldsCompletions(t *testing.T) {
	const stallAt, stallUntil = 100 * time.Millisecond, 300 * time.Millisecond
	cases := []struct {
		name     string
		submitAt time.Duration
		// held: the job must complete exactly at the stall's end;
		// otherwise within its own latency after submitAt.
		held bool
	}{
		{"before the stall, done before it", 50 * time.Millisecond, false},
		{"before the stall, in flight when it begins", 95 * time.Millisecond, true},
		{"during the stall", 150 * time.Millisecond, true},
		{"late in the stall, done after it", 295 * time.Millisecond, false},
		{"after the stall", 400 * time.Millisecond, false},
	}
	for _, driftPPM := range []int64{0, 90_000, -90_000} {
		for _, c := range cases {
			s := NewScheduler(1)
			n := s.AddNode("n", NodeOptions{ClockDriftPPM: driftPPM})
			io := NewIO(n, s.ForkRand(), IOLatency{Min: ioTestLatency, Median: ioTestLatency})
			var submitted, completed time.Duration = -1, -1
			s.After(stallAt, "stall", func() { io.StallUntil(stallUntil) })
			s.After(c.submitAt, "submit", func() {
				submitted = s.Now()
				io.Submit(func() error { return nil }, func(error) { completed = s.Now() })
			})
			if err := s.RunUntil(time.Second); err != nil {
				t.Fatal(err)
			}
			// The node's clock measures the latency: true time differs by
			// up to the drift.
			latencyMin := time.Duration(float64(ioTestLatency) / (1 + float64(max(driftPPM, 0))/1e6))
			latencyMax := time.Duration(float64(2*ioTestLatency) / (1 + float64(min(driftPPM, 0))/1e6))
			switch {
			case completed < 0:
				t.Errorf("drift %d, %s: never completed", driftPPM, c.name)
			case completed > stallAt && completed < stallUntil:
				t.Errorf("drift %d, %s: completed at %v, inside the stall", driftPPM, c.name, completed)
			case c.held && completed != stallUntil:
				t.Errorf("drift %d, %s: completed at %v, want the stall's end %v", driftPPM, c.name, completed, stallUntil)
			case !c.held && (completed < submitted+latencyMin || completed > submitted+latencyMax+time.Nanosecond):
				t.Errorf("drift %d, %s: completed at %v, want within [%v, %v]", driftPPM, c.name, completed, submitted+latencyMin, submitted+latencyMax)
			}
			if got, want := io.Stats().Stalled, map[bool]int64{true: 1, false: 0}[c.held]; got != want {
				t.Errorf("drift %d, %s: Stalled %d, want %d", driftPPM, c.name, got, want)
			}
		}
	}
}

// TestIOStallKeepsOrder checks that jobs held by a stall complete at its end
// in the order their latencies ended, and that a stall is extended but
// never shortened.
func TestIOStallKeepsOrder(t *testing.T) {
	s := NewScheduler(1)
	n := s.AddNode("n", NodeOptions{})
	io := NewIO(n, s.ForkRand(), IOLatency{})
	io.StallUntil(200 * time.Millisecond)
	io.StallUntil(100 * time.Millisecond) // shorter: ignored
	if got := io.StalledUntil(); got != 200*time.Millisecond {
		t.Fatalf("StalledUntil %v after a shorter stall, want 200ms", got)
	}
	var order []int
	for i := range 4 {
		s.After(time.Duration(i)*time.Millisecond, "submit", func() {
			io.Submit(func() error { return nil }, func(error) { order = append(order, i) })
		})
	}
	if err := s.RunUntil(199 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if len(order) != 0 || !io.Stalling() || io.InFlight() != 4 {
		t.Fatalf("inside the stall: completed %v, stalling %v, in flight %d; want none, true, 4", order, io.Stalling(), io.InFlight())
	}
	if err := s.RunUntil(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if len(order) != 4 || order[0] != 0 || order[1] != 1 || order[2] != 2 || order[3] != 3 {
		t.Fatalf("completion order %v, want [0 1 2 3]", order)
	}
	if io.Stalling() || io.InFlight() != 0 || io.Stats().Completed != 4 {
		t.Fatalf("after the stall: stalling %v, in flight %d, completed %d", io.Stalling(), io.InFlight(), io.Stats().Completed)
	}
}

// TestIOCrashCancelsJobsInFlight crashes a node with jobs in flight, some
// held by a stall: their work never runs, they are counted as cancelled
// (the stalled ones apart), and the crash ends the stall, so the next
// incarnation's jobs complete after their own latency.
func TestIOCrashCancelsJobsInFlight(t *testing.T) {
	s := NewScheduler(1)
	n := s.AddNode("n", NodeOptions{})
	io := NewIO(n, s.ForkRand(), IOLatency{Min: ioTestLatency, Median: ioTestLatency})
	ran := 0
	submit := func() { io.Submit(func() error { ran++; return nil }, func(error) {}) }
	submit() // completes before the stall
	s.After(50*time.Millisecond, "stall", func() {
		io.StallUntil(time.Second)
		submit()
		submit()
	})
	s.After(100*time.Millisecond, "late", submit)
	s.After(105*time.Millisecond, "crash", func() {
		if io.InFlight() != 3 {
			t.Errorf("in flight before the crash: %d, want 3", io.InFlight())
		}
		n.Crash()
		n.Restart()
		submit()
	})
	if err := s.RunUntil(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	st := io.Stats()
	if ran != 2 || st.Completed != 2 || st.Cancelled != 3 || st.CancelledStalled != 2 || st.Stalled != 2 {
		t.Fatalf("ran %d, stats %+v; want 2 ran, 2 completed, 3 cancelled of which 2 stalled, 2 stalled", ran, st)
	}
	if io.StalledUntil() != 0 || io.Stalling() || io.InFlight() != 0 {
		t.Fatalf("after the crash: stalled until %v, stalling %v, in flight %d", io.StalledUntil(), io.Stalling(), io.InFlight())
	}
}
