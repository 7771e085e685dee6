package sim

import (
	"testing"
	"time"
)

// TestClockStartsAtEpochPlusOffset checks that Now reads the fixed epoch plus
// virtual time plus the node's offset, independently per node.
func TestClockStartsAtEpochPlusOffset(t *testing.T) {
	s := NewScheduler(1)
	a := s.AddNode("a", NodeOptions{})
	b := s.AddNode("b", NodeOptions{ClockOffset: -3 * time.Second})
	if err := s.RunUntil(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got, want := a.Env().Clock.Now(), Epoch().Add(10*time.Second); !got.Equal(want) {
		t.Fatalf("a: %v, want %v", got, want)
	}
	if got, want := b.Env().Clock.Now(), Epoch().Add(7*time.Second); !got.Equal(want) {
		t.Fatalf("b: %v, want %v", got, want)
	}
}

// TestClockDriftSkewsNowAndTimers gives a node a clock running 10% fast and
// checks that after 100s of virtual time its clock reads 110s, that a timer
// of 11s on its clock fires after 10s of virtual time, and that changing the
// drift keeps the drift accumulated so far.
func TestClockDriftSkewsNowAndTimers(t *testing.T) {
	s := NewScheduler(1)
	n := s.AddNode("n", NodeOptions{ClockDriftPPM: 100_000})
	clock := n.Clock()
	var firedAt time.Duration
	n.AfterFunc(11*time.Second, func() { firedAt = s.Now() })
	if err := s.RunUntil(100 * time.Second); err != nil {
		t.Fatal(err)
	}
	if firedAt != 10*time.Second {
		t.Fatalf("11s timer fired at virtual %v, want 10s", firedAt)
	}
	if got := clock.Now().Sub(Epoch()); got != 110*time.Second {
		t.Fatalf("clock reads %v after 100s, want 110s", got)
	}
	if err := clock.SetDrift(-100_000); err != nil {
		t.Fatal(err)
	}
	if err := s.RunUntil(200 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := clock.Now().Sub(Epoch()); got != 200*time.Second {
		t.Fatalf("clock reads %v after 100s fast and 100s slow, want 200s", got)
	}
	if clock.SetDrift(clockDriftPPMMax+1) == nil {
		t.Fatal("drift beyond the bound accepted")
	}
}

// TestClockJumpMovesNowNotTimers steps a clock backwards and checks that Now
// moves while a pending timer still fires after its original duration.
func TestClockJumpMovesNowNotTimers(t *testing.T) {
	s := NewScheduler(1)
	n := s.AddNode("n", NodeOptions{})
	var firedAt time.Duration
	n.AfterFunc(5*time.Second, func() { firedAt = s.Now() })
	s.After(time.Second, "jump", func() {
		if err := n.Clock().Jump(-time.Hour); err != nil {
			t.Error(err)
		}
	})
	if err := s.RunUntil(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if firedAt != 5*time.Second {
		t.Fatalf("timer fired at %v, want 5s", firedAt)
	}
	if got := n.Clock().Now().Sub(Epoch()); got != 10*time.Second-time.Hour {
		t.Fatalf("clock reads %v, want 10s-1h", got)
	}
}

// TestClockStrongFaults checks that the clock faults reach the strengths a
// scenario needs to make wall-clock decisions (retention, segment rolls) and
// timers (session timeouts) react: jumps of days either way, drift of 10%,
// and that settings beyond the bounds are refused rather than clamped.
func TestClockStrongFaults(t *testing.T) {
	cases := []struct {
		name     string
		jump     time.Duration
		driftPPM int64
		// wantNow is the clock's reading minus the epoch after 10s of true
		// time; wantTimer is when a 10s timer set at the start fires.
		wantNow, wantTimer time.Duration
	}{
		{"forward two days", 48 * time.Hour, 0, 48*time.Hour + 10*time.Second, 10 * time.Second},
		{"backward one day", -24 * time.Hour, 0, -24*time.Hour + 10*time.Second, 10 * time.Second},
		{"fast by 10%", 0, clockDriftPPMMax, 11 * time.Second, 10 * time.Second * 10 / 11},
		{"slow by 10%", 0, -clockDriftPPMMax, 9 * time.Second, 10 * time.Second * 10 / 9},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := NewScheduler(1)
			n := s.AddNode("n", NodeOptions{ClockDriftPPM: tc.driftPPM})
			if err := n.Clock().Jump(tc.jump); err != nil {
				t.Fatal(err)
			}
			var firedAt, readingAt10s time.Duration
			n.AfterFunc(10*time.Second, func() { firedAt = s.Now() })
			s.After(10*time.Second, "read", func() { readingAt10s = n.Clock().Now().Sub(Epoch()) })
			if err := s.RunUntil(20 * time.Second); err != nil {
				t.Fatal(err)
			}
			if diff := firedAt - tc.wantTimer; diff < -time.Microsecond || diff > time.Microsecond {
				t.Errorf("timer fired at %v, want %v", firedAt, tc.wantTimer)
			}
			if readingAt10s != tc.wantNow {
				t.Errorf("clock reads %v at 10s, want %v", readingAt10s, tc.wantNow)
			}
		})
	}
	s := NewScheduler(1)
	n := s.AddNode("n", NodeOptions{})
	if err := n.Clock().Jump(clockOffsetMax + time.Hour); err == nil {
		t.Error("a jump beyond the offset bound was accepted")
	}
	if err := n.Clock().SetDrift(clockDriftPPMMax + 1); err == nil {
		t.Error("a drift beyond the bound was accepted")
	}
}
