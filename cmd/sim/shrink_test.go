package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kafkasim/kafkasim/sim/scenario"
)

// plantedScheduleEnvironment runs real simulations but fails every run in
// which all the needed fault events struck, as a bug that needs exactly
// those faults would: a failure whose cause the test knows.
func plantedScheduleEnvironment(t *testing.T, needed ...scenario.FaultEventID) environment {
	env := testEnvironment(t)
	env.simulate = func(cfg scenario.Config, opts scenario.Options) scenario.Result {
		result := scenario.Run(cfg, opts)
		schedule := cfg.FaultSchedule()
		if schedule == nil {
			return result
		}
		for _, id := range needed {
			if !struck(schedule, id) {
				return result
			}
		}
		result.Err = errors.New("planted: " + scenario.FormatFaultEvents(needed) + " struck")
		return result
	}
	return env
}

// struck reports whether event id took effect in the schedule's run.
func struck(schedule *scenario.FaultSchedule, id scenario.FaultEventID) bool {
	for _, e := range schedule.Fired {
		if e.FaultEventID == id && e.Struck() {
			return true
		}
	}
	return false
}

// lastLine returns the last line of text that starts with prefix.
func lastLine(t *testing.T, text, prefix string) string {
	t.Helper()
	lines := strings.Split(text, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], prefix) {
			return lines[i]
		}
	}
	t.Fatalf("no line starts with %q:\n%s", prefix, text)
	return ""
}

// TestShrunkScheduleReplays checks the whole shrinking of a fault
// schedule on a real run of seed 5 with crashes (12 firings, 7 that
// strike) whose failure is planted on crash#1 and crash#7 striking
// together: a failing run prints the schedule shrunk to exactly those
// two events, with what each did, and a replay command; that command is
// accepted by the command line, fails with the same verdict, lists the
// kept events, and prints the same bytes on a second run.
func TestShrunkScheduleReplays(t *testing.T) {
	needed := []scenario.FaultEventID{{Kind: "crash", N: 1}, {Kind: "crash", N: 7}}
	env := plantedScheduleEnvironment(t, needed...)
	code, stdout, stderr := invoke(env, "--seed", "5", "--faults", "crash")
	if code != exitFailed {
		t.Fatalf("exit %d, want %d\n%s%s", code, exitFailed, stdout, stderr)
	}
	for _, want := range []string{
		"seed 5: FAIL: planted: crash#1,crash#7 struck\n",
		"smallest failing fault set: crash: FAIL: planted",
		"shrinking the fault schedule: 7 fault events (each try is a full run, at most 200 tries)...\n",
		"smallest failing fault schedule: 2 of 7 events after ",
		"(none of them can go): FAIL: planted: crash#1,crash#7 struck\n" +
			"  crash#1 at 1.307s: crash point on broker: crash at its disk call 135 from now\n" +
			"  crash#7 at 7.739s: crash point on broker: crash at its disk call 261 from now\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	replay := lastLine(t, stdout, "reproduce: ")
	if want := "reproduce: go run ./cmd/sim --seed 5 --faults crash --fault-events crash#1,crash#7"; replay != want {
		t.Fatalf("last reproduce line %q, want %q", replay, want)
	}
	args := strings.Fields(strings.TrimPrefix(replay, "reproduce: go run ./cmd/sim"))
	code, first, stderr := invoke(env, append(args, "--shrink=false")...)
	if code != exitFailed {
		t.Fatalf("the replay command: exit %d\n%s%s", code, first, stderr)
	}
	verdict := lastLine(t, stdout, "smallest failing fault schedule: ")
	verdict = verdict[strings.Index(verdict, "): ")+len("): "):]
	for _, want := range []string{
		"  fault.events=crash#1,crash#7\n",
		"  fault events kept: 2 of 12 fired\n    crash#1 at 1.307s: ",
		"seed 5: " + verdict + "\n" + replay + "\n",
	} {
		if !strings.Contains(first, want) {
			t.Errorf("the replay's output lacks %q:\n%s", want, first)
		}
	}
	if _, second, _ := invoke(env, append(args, "--shrink=false")...); second != first {
		t.Errorf("two runs of the replay command differ:\n--- first\n%s--- second\n%s", first, second)
	}
}

// TestReplayOfEveryEventPrintsThePlainRun checks on the command line that
// --fault-events naming every event that fired replays the plain run:
// the same counts and trace hash, and the same verdict.
func TestReplayOfEveryEventPrintsThePlainRun(t *testing.T) {
	env := testEnvironment(t)
	_, plain, _ := invoke(env, "--seed", "3", "--faults", "crash")
	var all []string
	for n := 1; n <= 5; n++ {
		all = append(all, fmt.Sprintf("crash#%d", n))
	}
	code, replay, stderr := invoke(env, "--seed", "3", "--faults", "crash", "--fault-events", strings.Join(all, ","))
	if code != exitPassed {
		t.Fatalf("exit %d\n%s%s", code, replay, stderr)
	}
	for _, prefix := range []string{"  ops=", "seed 3: "} {
		if got, want := lastLine(t, replay, prefix), lastLine(t, plain, prefix); got != want {
			t.Errorf("the replay of every event printed %q, the plain run %q", got, want)
		}
	}
	if !strings.Contains(replay, "  fault events kept: 5 of 5 fired\n") {
		t.Errorf("the replay does not list its 5 events:\n%s", replay)
	}
}

// TestFaultEventsErrors checks the --fault-events errors that need a run
// of the seed to find out: an event that never fired is one line naming
// how many of its kind did, with exit status 2 and no verdict.
func TestFaultEventsErrors(t *testing.T) {
	code, stdout, stderr := invoke(testEnvironment(t), "--seed", "3", "--faults", "crash", "--fault-events", "crash#2,crash#9")
	want := "sim: --fault-events: crash#9 did not fire in the run of this seed and fault set (crash fired 5 times: crash#1 to crash#5)\n"
	if code != exitUsage || stdout != "" || stderr != want {
		t.Errorf("exit %d\nstdout %q\nstderr %q\nwant   %q", code, stdout, stderr, want)
	}
}

// TestShrinkingASwarmedRun checks that a swarmed failure shrinks from the
// subset the seed ran, and that each printed command replays what it
// names: an explicit list runs exactly its faults, and a smallest set of
// every fault needs --swarm=false, since --faults all alone would swarm.
func TestShrinkingASwarmedRun(t *testing.T) {
	all, _ := scenario.ParseFaults("all")
	env := testEnvironment(t)
	var ranFaults []string
	failWith := func(needed func(scenario.Faults) bool) {
		ranFaults = nil
		env.simulate = func(cfg scenario.Config, _ scenario.Options) scenario.Result {
			ranFaults = append(ranFaults, cfg.Faults.String())
			if needed(cfg.Faults) {
				return failing(1)
			}
			return passing()
		}
	}
	seed := uint64(1)
	for subset := scenario.Swarm(seed, all); !subset[scenario.FaultCrash] || len(subset) < 4; subset = scenario.Swarm(seed, all) {
		seed++
	}
	failWith(func(f scenario.Faults) bool { return f[scenario.FaultCrash] })
	_, stdout, _ := invoke(env, "--seed", fmt.Sprint(seed))
	if ranFaults[0] != scenario.Swarm(seed, all).String() {
		t.Errorf("the run enabled %s, want the seed's subset %s", ranFaults[0], scenario.Swarm(seed, all))
	}
	if got, want := lastLine(t, stdout, "smallest failing fault set: "), "smallest failing fault set: crash: "; !strings.HasPrefix(got, want) {
		t.Errorf("got %q, want %q...", got, want)
	}
	if !strings.Contains(stdout, fmt.Sprintf("\nreproduce: go run ./cmd/sim --seed %d --faults crash\n", seed)) {
		t.Errorf("no reproduce command for the smallest set:\n%s", stdout)
	}

	failWith(func(f scenario.Faults) bool { return f.String() == "all" })
	_, stdout, _ = invoke(env, "--seed", fmt.Sprint(seed), "--swarm=false")
	want := fmt.Sprintf("reproduce: go run ./cmd/sim --seed %d --faults all --swarm=false", seed)
	if got := lastLine(t, stdout, "reproduce: "); !strings.HasPrefix(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
