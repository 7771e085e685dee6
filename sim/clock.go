package sim

import (
	"fmt"
	"time"

	"github.com/kafkasim/kafkasim/core"
)

// Limits of the simulated clocks.
const (
	// clockDriftPPMMax bounds the rate skew of a node's clock: 10%, far more
	// than real quartz (tens of ppm), so that tests can exaggerate drift.
	clockDriftPPMMax = 100_000

	// clockOffsetMax bounds a clock's total offset from true virtual time.
	clockOffsetMax = 100 * 365 * 24 * time.Hour

	ppm = 1_000_000
)

// epoch is the wall-clock reading of every node at virtual time zero (before
// offsets): a fixed date, so that runs do not depend on when they happen.
var epoch = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

// Epoch returns the wall-clock time at which every simulation starts.
func Epoch() time.Time { return epoch }

// Clock is a node's simulated clock (a core.Clock). Now reads the epoch plus
// virtual time plus the node's offset and accumulated drift. Timers run on
// the node's own sense of elapsed time: with a positive drift its timers fire
// early in true virtual time, as on a machine whose oscillator runs fast.
// Jumps move Now but not timers, like a wall clock stepped by NTP while
// monotonic timers continue.
type Clock struct {
	node       *Node
	offset     time.Duration
	driftPPM   int64
	driftSince time.Duration
}

var _ core.Clock = (*Clock)(nil)

// Now returns the node's current wall-clock reading.
func (c *Clock) Now() time.Time {
	v := c.node.s.now
	return epoch.Add(v + c.offset + c.driftAt(v))
}

// driftAt returns the drift accumulated from driftSince to virtual time v,
// computed in two parts so that it cannot overflow.
func (c *Clock) driftAt(v time.Duration) time.Duration {
	elapsed := int64(v - c.driftSince)
	return time.Duration(elapsed/ppm*c.driftPPM + elapsed%ppm*c.driftPPM/ppm)
}

// Offset returns how far the clock is ahead of true virtual time right now.
func (c *Clock) Offset() time.Duration { return c.offset + c.driftAt(c.node.s.now) }

// SetOffset sets the clock's offset from true virtual time, keeping its
// drift rate.
func (c *Clock) SetOffset(offset time.Duration) error {
	if offset < -clockOffsetMax || offset > clockOffsetMax {
		return fmt.Errorf("sim: clock offset %v outside ±%v", offset, clockOffsetMax)
	}
	c.offset = offset
	c.driftSince = c.node.s.now
	return nil
}

// Jump steps the clock by d (negative: backwards), as an NTP step or an
// operator would. Timers are unaffected.
func (c *Clock) Jump(d time.Duration) error {
	if err := c.SetOffset(c.Offset() + d); err != nil {
		return err
	}
	c.node.s.Trace("clock-jump %s %v", c.node.name, d)
	return nil
}

// SetDrift changes the clock's rate skew to driftPPM parts per million,
// from now on; the drift accumulated so far is kept.
func (c *Clock) SetDrift(driftPPM int64) error {
	if driftPPM < -clockDriftPPMMax || driftPPM > clockDriftPPMMax {
		return fmt.Errorf("sim: clock drift %d ppm outside ±%d", driftPPM, clockDriftPPMMax)
	}
	now := c.node.s.now
	c.offset += c.driftAt(now)
	c.driftSince = now
	c.driftPPM = driftPPM
	return nil
}

// Drift returns the clock's rate skew in parts per million.
func (c *Clock) Drift() int64 { return c.driftPPM }

// AfterFunc schedules f on the node's current incarnation once d has elapsed
// on the node's clock. Per the core.Clock contract f never runs inside
// AfterFunc, never for a crashed incarnation, and d <= 0 runs it as a separate
// event at the current virtual time.
func (c *Clock) AfterFunc(d time.Duration, f func()) core.Timer {
	if f == nil {
		panic("sim: AfterFunc with a nil function")
	}
	s := c.node.s
	ev := s.schedule(c.node, s.now+c.trueDuration(d), "timer", f)
	return &timer{s: s, ev: ev}
}

// trueDuration converts a duration measured on this clock to true virtual
// time: local = true * (1 + drift), in parts that cannot overflow.
func (c *Clock) trueDuration(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	rate := ppm + c.driftPPM
	q, r := int64(d)/rate, int64(d)%rate
	return time.Duration(q*ppm + r*ppm/rate)
}

// timer is a core.Timer over a scheduled event.
type timer struct {
	s  *Scheduler
	ev *event
}

// Stop cancels the timer: true if it was pending, false if it already ran, was
// stopped before, or died with its node's incarnation.
func (t *timer) Stop() bool {
	ev := t.ev
	if ev.state != eventPending && ev.state != eventParked {
		return false
	}
	n := ev.node
	if !n.alive || ev.incarnation != n.incarnation {
		return false
	}
	t.s.cancel(ev)
	return true
}
