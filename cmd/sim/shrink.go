package main

import (
	"fmt"
	"io"

	"github.com/kafkasim/kafkasim/sim/scenario"
)

// scheduleTriesMax bounds the runs one shrinking of a fault schedule
// makes: at 0.1 to 0.5 s of wall time a run, under two minutes. Delta
// debugging needs far fewer when the failure needs a few events (6 tries
// for one power loss among 21 events in TestShrinkScheduleOfARealFailure).
const scheduleTriesMax = 200

// shrinkSchedule looks for a smaller fault schedule with which the seed
// and faults still fail, among the events that struck in the run that
// schedule recorded (or replayed), and prints it with the command that
// replays it. Each try is a full run that keeps only some events
// (scenario.FaultSchedule.Replay); scenario.ShrinkSubset chooses them.
func shrinkSchedule(seed uint64, faults scenario.Faults, swarm bool, schedule *scenario.FaultSchedule, env environment, stdout io.Writer) {
	cfg := derive(seed, faults, swarm)
	replay := func(ids []scenario.FaultEventID) (scenario.Result, *scenario.FaultSchedule) {
		s, err := schedule.Replay(ids)
		if err != nil {
			// Every id comes from the schedule's own run.
			panic(fmt.Sprintf("sim: replaying the schedule's own events: %v", err))
		}
		return simulateRecovering(env, cfg.WithFaultSchedule(s), scenario.Options{}, io.Discard), s
	}
	candidates, extraTries := shrinkCandidates(schedule, replay)
	if len(candidates) == 0 {
		fmt.Fprintf(stdout, "no fault event struck: the fault schedule has nothing to shrink\n")
		return
	}
	pick := func(keep []int) []scenario.FaultEventID {
		ids := make([]scenario.FaultEventID, 0, len(keep))
		for _, i := range keep {
			ids = append(ids, candidates[i])
		}
		return ids
	}
	fmt.Fprintf(stdout, "shrinking the fault schedule: %d fault events (each try is a full run, at most %d tries)...\n", len(candidates), scheduleTriesMax)
	fails := func(keep []int) bool {
		result, _ := replay(pick(keep))
		return !result.Passed()
	}
	progress := func(tries int, keep []int) {
		fmt.Fprintf(stdout, "  try %d: %d of %d events still fail\n", tries+extraTries, len(keep), len(candidates))
	}
	shrunk := scenario.ShrinkSubset(len(candidates), scheduleTriesMax-extraTries, fails, progress)
	kept := pick(shrunk.Keep)
	result, final := replay(kept)
	minimal := "none of them can go"
	if !shrunk.Minimal {
		minimal = "out of tries, so some may not be needed"
	}
	fmt.Fprintf(stdout, "smallest failing fault schedule: %d of %d events after %d tries (%s): %s\n",
		len(kept), len(candidates), shrunk.Tries+extraTries, minimal, result.Verdict())
	for _, e := range final.Fired {
		if !e.Suppressed {
			fmt.Fprintf(stdout, "  %s\n", e)
		}
	}
	fmt.Fprintf(stdout, "reproduce: %s\n", replayCommand(seed, faults, swarm, kept))
}

// shrinkCandidates returns the events the shrinking chooses from: those
// that struck. Events that fired without effect are left out, to save
// tries, once one try has shown that the seed still fails without them;
// otherwise every event the run let fire is a candidate. It returns the
// tries it made.
func shrinkCandidates(schedule *scenario.FaultSchedule, replay func([]scenario.FaultEventID) (scenario.Result, *scenario.FaultSchedule)) ([]scenario.FaultEventID, int) {
	var active, struck []scenario.FaultEventID
	for _, e := range schedule.Fired {
		if !e.Suppressed {
			active = append(active, e.FaultEventID)
		}
		if e.Struck() {
			struck = append(struck, e.FaultEventID)
		}
	}
	if len(struck) == len(active) {
		return struck, 0
	}
	if result, _ := replay(struck); !result.Passed() {
		return struck, 1
	}
	return active, 1
}
