package scenario

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// recordSeed runs the seed once with a recording schedule.
func recordSeed(t *testing.T, cfg Config) (Result, *FaultSchedule) {
	t.Helper()
	recording := NewFaultRecording()
	result := Run(cfg.WithFaultSchedule(recording), Options{})
	return result, recording
}

// firedIDs lists the ids of every firing of a schedule, in order.
func firedIDs(s *FaultSchedule) []FaultEventID {
	var ids []FaultEventID
	for _, e := range s.Fired {
		ids = append(ids, e.FaultEventID)
	}
	return ids
}

// sameRun fails the test unless two results are the same run: trace
// hash, verdict, statistics and history.
func sameRun(t *testing.T, what string, got, want Result) {
	t.Helper()
	gotHistory, _ := json.Marshal(got.History)
	wantHistory, _ := json.Marshal(want.History)
	if got.TraceHash != want.TraceHash || got.Verdict() != want.Verdict() || got.Stats != want.Stats || string(gotHistory) != string(wantHistory) {
		t.Fatalf("%s differs from the plain run: trace %s, want %s; verdict %q, want %q", what, got.TraceHash, want.TraceHash, got.Verdict(), want.Verdict())
	}
}

// TestReplayOfEveryEventIsThePlainRun checks the two promises that let a
// replay command stand for a seed: recording the fault schedule changes
// nothing in the run, and a replay that keeps every fired event is the
// plain run, byte for byte (same trace hash, verdict, statistics and
// history), for a single broker and a cluster seed with every fault. The
// recording must hold events of several kinds that took effect, or the
// test would prove nothing, and only kinds that --fault-events reads.
func TestReplayOfEveryEventIsThePlainRun(t *testing.T) {
	faults, _ := ParseFaults("all")
	for _, seed := range []uint64{3, firstClusterSeed(t, faults)} {
		cfg := Derive(seed, faults)
		plain := Run(cfg, Options{})
		recorded, recording := recordSeed(t, cfg)
		sameRun(t, "the recording run", recorded, plain)
		kinds := map[string]bool{}
		for _, e := range recording.Struck() {
			kinds[e.Kind] = true
		}
		for _, e := range recording.Fired {
			// A kind missing from the list would make the printed replay
			// command one that --fault-events refuses.
			if !slices.Contains(FaultEventKinds, e.Kind) {
				t.Errorf("seed %d fired %s, a kind FaultEventKinds lacks", seed, e.FaultEventID)
			}
		}
		if len(kinds) < 3 {
			t.Fatalf("seed %d: events of only %d kinds struck: %v", seed, len(kinds), recording.Fired)
		}
		replay, err := recording.Replay(firedIDs(recording))
		if err != nil {
			t.Fatal(err)
		}
		replayed := Run(cfg.WithFaultSchedule(replay), Options{})
		sameRun(t, "the replay of every event", replayed, plain)
		if got, want := replayed.Config.Lines(), plain.Config.Lines(); len(got) != len(want)+1 || !slices.Contains(got, "fault.events="+FormatFaultEvents(firedIDs(recording))) {
			t.Errorf("seed %d: a replay's options must add exactly its fault.events line:\n%s", seed, strings.Join(got, "\n"))
		}
	}
}

// firstClusterSeed returns the first seed that runs a cluster.
func firstClusterSeed(t *testing.T, faults Faults) uint64 {
	for seed := uint64(1); seed < 100; seed++ {
		if Derive(seed, faults).Cluster.Nodes > 0 {
			return seed
		}
	}
	t.Fatal("no cluster seed below 100")
	return 0
}

// TestReplayPinsTheSchedule checks what makes a schedule shrinkable event
// by event: in a replay that keeps a single event, every fault timer
// fires at the times and under the ids of the recording, the others are
// suppressed, and the kept event, the first that struck (so that nothing
// before it differs), strikes exactly as recorded.
func TestReplayPinsTheSchedule(t *testing.T) {
	faults, _ := ParseFaults("all")
	cfg := Derive(3, faults)
	_, recording := recordSeed(t, cfg)
	struck := recording.Struck()
	if len(struck) < 5 {
		t.Fatalf("only %d events struck", len(struck))
	}
	first := struck[0]
	replay, err := recording.Replay([]FaultEventID{first.FaultEventID})
	if err != nil {
		t.Fatal(err)
	}
	Run(cfg.WithFaultSchedule(replay), Options{})
	if len(replay.Fired) != len(recording.Fired) {
		t.Fatalf("the replay fired %d events, the recording %d", len(replay.Fired), len(recording.Fired))
	}
	for i, e := range replay.Fired {
		want := recording.Fired[i]
		if e.FaultEventID != want.FaultEventID || e.At != want.At {
			t.Fatalf("firing %d: %s, want %s", i, e, want)
		}
		if kept := e.FaultEventID == first.FaultEventID; kept == e.Suppressed {
			t.Fatalf("firing %d: %s (kept %v)", i, e, kept)
		}
	}
	if got := replay.Struck(); len(got) != 1 || got[0].String() != first.String() {
		t.Fatalf("the replay struck %v, want exactly %s", got, first)
	}
	if !slices.Equal(replay.Kept(), []FaultEventID{first.FaultEventID}) {
		t.Fatalf("kept %v", replay.Kept())
	}
}

// TestShrinkScheduleOfARealFailure shrinks the schedule of a real failing
// run: power losses, client crashes, pauses and network faults with the
// durability promise broken on purpose (as TestBrokenPromiseIsCaught), so
// that a power loss that strikes while acknowledged writes are unsynced
// loses some (seed 7: 21 events struck). The shrunk schedule must
// fail, keep fewer events than struck, replay to the same trace twice,
// and the run without any event must pass.
func TestShrinkScheduleOfARealFailure(t *testing.T) {
	faults, _ := ParseFaults("powerloss,clients,pause,network")
	cfg := Derive(7, faults)
	cfg.FlushPerMessage = false
	cfg.promiseDurable = true
	result, recording := recordSeed(t, cfg)
	if result.Passed() {
		t.Fatalf("seed 7 passed: %s", result.Verdict())
	}
	struck := recording.Struck()
	run := func(keep []int) Result {
		ids := make([]FaultEventID, 0, len(keep))
		for _, i := range keep {
			ids = append(ids, struck[i].FaultEventID)
		}
		replay, err := recording.Replay(ids)
		if err != nil {
			t.Fatal(err)
		}
		return Run(cfg.WithFaultSchedule(replay), Options{})
	}
	const triesMax = 60
	fails := func(keep []int) bool {
		result := run(keep)
		return !result.Passed()
	}
	shrunk := ShrinkSubset(len(struck), triesMax, fails, nil)
	for _, i := range shrunk.Keep {
		t.Logf("kept %s", struck[i])
	}
	t.Logf("%d struck events shrunk to %d in %d tries", len(struck), len(shrunk.Keep), shrunk.Tries)
	if len(shrunk.Keep) == 0 || len(shrunk.Keep) >= len(struck) {
		t.Fatalf("%d struck events shrunk to %v", len(struck), shrunk.Keep)
	}
	first, second := run(shrunk.Keep), run(shrunk.Keep)
	if first.Passed() || first.TraceHash != second.TraceHash {
		t.Fatalf("the shrunk schedule: %s (trace %s), then trace %s", first.Verdict(), first.TraceHash, second.TraceHash)
	}
	if none := run(nil); !none.Passed() {
		t.Fatalf("without any fault event: %s", none.Verdict())
	}
}

// TestParseFaultEvents checks the --fault-events syntax: "none", a list,
// and one readable error for each kind of mistake.
func TestParseFaultEvents(t *testing.T) {
	cases := []struct {
		text, want, err string
	}{
		{"none", "none", ""},
		{"crash#3,partition#1", "crash#3,partition#1", ""},
		{"crash#3, clock-jump#12", "crash#3,clock-jump#12", ""},
		{"crash", "", `"crash" is not a fault event: want KIND#N such as crash#3, or none`},
		{"crash#0", "", `"crash#0" is not a fault event: want KIND#N such as crash#3, or none`},
		{"crash#x", "", `"crash#x" is not a fault event: want KIND#N such as crash#3, or none`},
		{"meteor#1", "", `unknown fault event kind "meteor" in "meteor#1" (known: client-crash, clock-jump, crash, damage, disk-error, disk-full, network, partition, pause)`},
		{"", "", `"" is not a fault event: want KIND#N such as crash#3, or none`},
	}
	for _, c := range cases {
		ids, err := ParseFaultEvents(c.text)
		switch {
		case c.err != "" && (err == nil || err.Error() != c.err):
			t.Errorf("%q: error %v, want %s", c.text, err, c.err)
		case c.err == "" && (err != nil || FormatFaultEvents(ids) != c.want):
			t.Errorf("%q: %v %v, want %s", c.text, ids, err, c.want)
		}
	}
}

// TestReplayRefusesEventsThatDidNotFire checks that a replay names only
// events of the recording, with an error that says how many fired.
func TestReplayRefusesEventsThatDidNotFire(t *testing.T) {
	faults, _ := ParseFaults("crash")
	_, recording := recordSeed(t, Derive(3, faults))
	crashes := len(recording.Fired)
	cases := []struct {
		id   FaultEventID
		want string
	}{
		{FaultEventID{"crash", crashes + 1}, "did not fire in the run of this seed and fault set (crash fired"},
		{FaultEventID{"partition", 1}, "(no partition event fired)"},
	}
	for _, c := range cases {
		if _, err := recording.Replay([]FaultEventID{c.id}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.id, err, c.want)
		}
	}
	if _, err := recording.Replay([]FaultEventID{{"crash", crashes}}); err != nil {
		t.Errorf("the last crash: %v", err)
	}
}
