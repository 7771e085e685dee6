package sim

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kafkasim/kafkasim/core"
)

// crashPointNode returns a scheduler with one node whose disk (wired by
// SetDisk, so a crash loses unsynced data) holds a synced, empty "log".
func crashPointNode(t *testing.T) (*Scheduler, *Node, *Disk) {
	t.Helper()
	s := NewScheduler(7)
	n := s.AddNode("n", NodeOptions{})
	d := NewDisk(n.Rand().Fork(), DiskOptions{})
	n.SetDisk(d)
	diskWriteFile(t, d, "log", "", true)
	diskMust(t, d.SyncDir("."))
	return s, n, d
}

// crashPointHandler is a toy handler: open, write A, sync, write B, sync,
// and a deferred close. It records each call that returned.
func crashPointHandler(fs core.FS, done *[]string) {
	f, err := fs.Open("log")
	if err != nil {
		panic(err)
	}
	*done = append(*done, "open")
	defer f.Close()
	for _, part := range []string{"A", "B"} {
		if _, err := f.Write([]byte(part)); err != nil {
			panic(err)
		}
		*done = append(*done, "write "+part)
		if err := f.Sync(); err != nil {
			panic(err)
		}
		*done = append(*done, "sync "+part)
	}
}

// TestCrashPointBetweenAnyTwoCalls arms a crash point at every position of
// the toy handler and checks that the calls before it happened, the one at
// it and every later one did not, the node crashed with its pending events,
// and after a restart the disk holds exactly the durable prefix.
func TestCrashPointBetweenAnyTwoCalls(t *testing.T) {
	all := []string{"open", "write A", "sync A", "write B", "sync B"}
	cases := []struct {
		callsBefore int
		durable     string
	}{
		{0, ""},   // at the open
		{1, ""},   // at the first write
		{2, ""},   // at the first sync: "A" was written, not synced
		{3, "A"},  // at the second write
		{4, "A"},  // at the second sync
		{5, "AB"}, // at the deferred close
		{6, "AB"}, // never reached
	}
	for _, tc := range cases {
		s, n, d := crashPointNode(t)
		hits := 0
		d.SetCrashPoint(CrashPoint{CallsBefore: tc.callsBefore, OnHit: func() { hits++ }})
		var done []string
		laterRan := false
		n.AfterFunc(0, func() { crashPointHandler(n.Env().FS, &done) })
		n.AfterFunc(time.Second, func() { laterRan = true })
		if err := s.RunFor(time.Minute); err != nil {
			t.Fatal(err)
		}
		reached := tc.callsBefore < 6
		if want := all[:min(tc.callsBefore, len(all))]; !slices.Equal(done, want) {
			t.Errorf("crash point %d: calls done %v, want %v", tc.callsBefore, done, want)
		}
		wantHits := map[bool]int{true: 1, false: 0}[reached]
		if hits != wantHits || d.Stats().CrashPointsHit != int64(wantHits) || n.Alive() == reached || laterRan == reached {
			t.Errorf("crash point %d: hits %d, stats %d, alive %v, later event ran %v",
				tc.callsBefore, hits, d.Stats().CrashPointsHit, n.Alive(), laterRan)
		}
		if reached {
			n.Restart()
		}
		if got := diskRead(t, d, "log"); got != tc.durable {
			t.Errorf("crash point %d: after restart the log holds %q, want %q", tc.callsBefore, got, tc.durable)
		}
	}
}

// TestCrashPointPowerLossFlag checks that a disk installed with SetFS (a
// process crash keeps the page cache) loses unsynced data at a crash point
// only when PowerLoss is set, and that a crash point reached from a
// scheduler-level event (a harness booting the node) crashes the owner.
func TestCrashPointPowerLossFlag(t *testing.T) {
	for _, powerLoss := range []bool{false, true} {
		s := NewScheduler(8)
		n := s.AddNode("n", NodeOptions{})
		d := NewDisk(n.Rand().Fork(), DiskOptions{})
		n.SetFS(d)
		d.Bind(n)
		diskWriteFile(t, d, "log", "unsynced", false)
		d.SetCrashPoint(CrashPoint{PowerLoss: powerLoss})
		s.After(0, "boot", func() {
			_, _ = d.Open("log")
			t.Error("the boot continued past the crash point")
		})
		if err := s.RunFor(time.Second); err != nil {
			t.Fatal(err)
		}
		if n.Alive() {
			t.Fatalf("power loss %v: the owner is alive after its crash point", powerLoss)
		}
		want := map[bool]string{false: "unsynced", true: "<missing>"}[powerLoss]
		if got := diskRead(t, d, "log"); got != want {
			t.Errorf("power loss %v: log = %q, want %q", powerLoss, got, want)
		}
	}
}

// TestCrashPointTreatsFramesLikeCrash sends a frame, then reaches a crash
// point in the same handler, and checks that the peer sees exactly what it
// sees when the handler calls Node.Crash at that point: the frame, then a
// reset.
func TestCrashPointTreatsFramesLikeCrash(t *testing.T) {
	outcome := func(useCrashPoint bool) string {
		s, a, _, accepted := pair(t, false)
		d := NewDisk(a.Rand().Fork(), DiskOptions{})
		a.SetDisk(d)
		_, conn := dial(t, a, "b:9000")
		if err := s.RunFor(time.Second); err != nil {
			t.Fatal(err)
		}
		if useCrashPoint {
			d.SetCrashPoint(CrashPoint{})
		}
		a.AfterFunc(0, func() {
			conn.Send([]byte("before"))
			if !useCrashPoint {
				a.Crash()
				return
			}
			_, _ = d.Create("x")
			conn.Send([]byte("after"))
		})
		if err := s.RunFor(time.Minute); err != nil {
			t.Fatal(err)
		}
		peer := (*accepted)[0]
		return strings.Join(peer.frames, ",") + " closed=" + errName(peer.err)
	}
	crash, point := outcome(false), outcome(true)
	if crash != "before closed=reset" || point != crash {
		t.Errorf("peer after Node.Crash: %q; after a crash point: %q; want both \"before closed=reset\"", crash, point)
	}
}

func errName(err error) string {
	switch {
	case err == nil:
		return "nil"
	case errors.Is(err, core.ErrConnReset):
		return "reset"
	case errors.Is(err, core.ErrTimeout):
		return "timeout"
	}
	return err.Error()
}

// TestCrashPointOtherPanicsPropagate checks that the scheduler's recovery of
// crash points lets every other panic through unchanged.
func TestCrashPointOtherPanicsPropagate(t *testing.T) {
	s, n, d := crashPointNode(t)
	d.SetCrashPoint(CrashPoint{CallsBefore: 5})
	n.AfterFunc(0, func() { panic("boom") })
	defer func() {
		if recovered := recover(); recovered != "boom" {
			t.Errorf("recovered %v, want boom", recovered)
		}
	}()
	s.Step()
	t.Error("Step returned after a panicking event")
}

// TestCrashPointOnlyCountsInsideEvents checks that calls made by harness
// code between events neither count toward nor trigger a crash point.
func TestCrashPointOnlyCountsInsideEvents(t *testing.T) {
	s, n, d := crashPointNode(t)
	d.SetCrashPoint(CrashPoint{CallsBefore: 1})
	for range 5 {
		diskRead(t, d, "log")
	}
	if !d.CrashPointArmed() || !n.Alive() {
		t.Fatal("calls outside events moved the crash point")
	}
	var done []string
	n.AfterFunc(0, func() { crashPointHandler(n.Env().FS, &done) })
	if err := s.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(done, []string{"open"}) || n.Alive() {
		t.Errorf("calls done %v, alive %v; want [open], crashed", done, n.Alive())
	}
}
