package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/kafkasim/kafkasim/checker"
	"github.com/kafkasim/kafkasim/sim/scenario"
)

// single runs one seed: every derived option, the run's counts, a capped
// anomaly report on failure, the verdict and the reproduce command. An
// output file that cannot be written costs one line on stderr and exit
// status 2, after the verdict is printed.
func single(o options, env environment, stdout, stderr io.Writer) int {
	// The trace file is opened first so that a bad path fails before the
	// run, not after it.
	trace, err := createTrace(o.tracePath)
	if err != nil {
		fmt.Fprintf(stderr, "sim: --trace: %v\n", err)
		return exitUsage
	}
	start := env.now()
	schedule, err := faultSchedule(o, env)
	if err != nil {
		fmt.Fprintf(stderr, "sim: --fault-events: %v\n", err)
		_ = trace.close()
		return exitUsage
	}
	cfg := derive(o.seed, o.faults, o.swarm).WithFaultSchedule(schedule)
	if !o.quiet {
		for _, line := range cfg.Lines() {
			fmt.Fprintln(stdout, "  "+line)
		}
	}
	result := simulateRecovering(env, cfg, scenario.Options{Trace: trace.writer()}, stderr)
	fmt.Fprintf(stderr, "sim: seed %d took %v of wall time\n", o.seed, env.now().Sub(start).Round(time.Millisecond))

	code := exitPassed
	if !result.Passed() {
		code = exitFailed
	}
	failed := func(flagName string, err error) {
		fmt.Fprintf(stderr, "sim: --%s: %v\n", flagName, err)
		code = exitUsage
	}
	if err := trace.close(); err != nil {
		failed("trace", err)
	}
	if o.historyPath != "" {
		if err := writeHistory(o.historyPath, result.History); err != nil {
			failed("history", err)
		}
	}
	if o.quorumHistoryPath != "" {
		if result.QuorumHistory == nil {
			fmt.Fprintf(stderr, "sim: --quorum-history: nothing written: seed %d runs one broker, which has no quorum (a cluster needs the cluster fault)\n", o.seed)
		} else if err := writeQuorumHistory(o.quorumHistoryPath, result.QuorumHistory); err != nil {
			failed("quorum-history", err)
		}
	}
	if o.faultEvents != nil && !o.quiet {
		writeKeptEvents(stdout, schedule)
	}
	reproduce := reproduceCommand(o.seed, o.faults, o.swarm)
	if schedule.Replaying() {
		reproduce = replayCommand(o.seed, o.faults, o.swarm, schedule.Kept())
	}
	if err := printOutcome(o, env, result, reproduce, stdout); err != nil {
		failed("report", err)
	}
	if !result.Passed() && o.htmlPath != "" {
		if err := writeVisualization(o.htmlPath, result); errors.Is(err, errAllLinearizable) {
			fmt.Fprintf(stderr, "sim: --html: %v\n", err)
		} else if err != nil {
			failed("html", err)
		}
	}
	if !result.Passed() && o.shrink && len(cfg.Faults) > 0 {
		faults, swarm := o.faults, o.swarm
		if !schedule.Replaying() {
			// The fault set first: it drops whole classes, the continuous
			// ones too, in a few tries, and leaves fewer events to shrink.
			// It starts from the classes the run enabled, the swarmed
			// subset if it was swarmed, and names its sets explicitly.
			faults, schedule = shrinkFaults(o.seed, cfg.Faults, env, stdout)
			swarm = false
		}
		shrinkSchedule(o.seed, faults, swarm, schedule, env, stdout)
	}
	return code
}

// faultSchedule returns the schedule of the seed's run: a recording, which
// changes nothing in the run and which the schedule's shrinking starts
// from; or, with --fault-events, a replay of the kept events. A replay is
// pinned to a recording of the same seed and faults (scenario's
// schedule.go says why), so it costs a run first.
func faultSchedule(o options, env environment) (*scenario.FaultSchedule, error) {
	recording := scenario.NewFaultRecording()
	if o.faultEvents == nil {
		return recording, nil
	}
	cfg := derive(o.seed, o.faults, o.swarm).WithFaultSchedule(recording)
	simulateRecovering(env, cfg, scenario.Options{}, io.Discard)
	return recording.Replay(o.faultEvents)
}

// writeKeptEvents lists the events a replay kept, with what each did.
func writeKeptEvents(stdout io.Writer, schedule *scenario.FaultSchedule) {
	kept := 0
	for _, e := range schedule.Fired {
		if !e.Suppressed {
			kept++
		}
	}
	fmt.Fprintf(stdout, "  fault events kept: %d of %d fired\n", kept, len(schedule.Fired))
	for _, e := range schedule.Fired {
		if !e.Suppressed {
			fmt.Fprintf(stdout, "    %s\n", e)
		}
	}
}

// simulateRecovering runs cfg, turning a panic (a broken assertion in the
// broker) into a failed result whose verdict names it, with its stack on
// stderr: the verdict, the reproduce command and the shrinking still
// follow, and standard output stays the same on every run of the seed.
func simulateRecovering(env environment, cfg scenario.Config, opts scenario.Options, stderr io.Writer) (result scenario.Result) {
	defer func() {
		if recovered := recover(); recovered != nil {
			firstLine, _, _ := strings.Cut(fmt.Sprint(recovered), "\n")
			fmt.Fprintf(stderr, "sim: the run panicked: %v\n%s", recovered, debug.Stack())
			result = scenario.Result{Config: cfg, Err: fmt.Errorf("panic: %s", firstLine)}
		}
	}()
	return env.simulate(cfg, opts)
}

// printOutcome prints the run's counts, the capped report of a failed
// check (writing the full one to a file), the verdict and the reproduce
// command. Only the last two are printed with --quiet.
func printOutcome(o options, env environment, result scenario.Result, reproduce string, stdout io.Writer) error {
	var reportErr error
	if !o.quiet {
		fmt.Fprintf(stdout, "  ops=%d events=%d virtual=%v trace=%s\n",
			len(result.History.Ops), result.Events, result.VirtualTime.Round(time.Millisecond), shortHash(result.TraceHash))
	}
	quorumFailed := result.Quorum != nil && result.Quorum.Status != checker.StatusOK
	if (result.Check.Status != checker.StatusOK || quorumFailed) && (!o.quiet || o.reportPath != "") {
		path := o.reportPath
		if path == "" {
			path = defaultReportPath(env.reportDirectory, o.seed, o.faults, o.swarm)
		}
		reportErr = writeFullReport(path, o.seed, o.faults, o.swarm, &result.Check, result.Quorum)
		if reportErr != nil {
			path = ""
		}
		if !o.quiet && result.Check.Status != checker.StatusOK {
			writeCappedReport(stdout, &result.Check, path)
		}
		if !o.quiet && quorumFailed {
			writeCappedQuorumReport(stdout, result.Quorum, path)
		}
	}
	if !o.quiet && result.Quorum != nil {
		writeQuorumSummary(stdout, result)
	}
	fmt.Fprintf(stdout, "seed %d: %s\n", o.seed, result.Verdict())
	fmt.Fprintf(stdout, "reproduce: %s\n", reproduce)
	return reportErr
}

// shortHash is the prefix of a trace hash that is enough to tell runs apart.
func shortHash(hash string) string {
	return hash[:min(len(hash), 16)]
}

// defaultReportPath names the full report after the seed and the faults,
// so that reports of different runs do not overwrite each other and the
// printed path is the same on every run of one seed.
func defaultReportPath(directory string, seed uint64, faults scenario.Faults, swarm bool) string {
	name := fmt.Sprintf("kafkasim-sim-seed-%d-faults-%s", seed, faults)
	if flag := swarmFlag(faults, swarm); flag != "" {
		// "-swarm" or "-swarm-false".
		name += "-" + strings.ReplaceAll(strings.TrimPrefix(flag, "--"), "=", "-")
	}
	return filepath.Join(directory, name+".txt")
}

// traceFile is the --trace output; its zero value (no --trace) does
// nothing.
type traceFile struct {
	file     *os.File
	buffered *bufio.Writer
}

func createTrace(path string) (traceFile, error) {
	if path == "" {
		return traceFile{}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return traceFile{}, err
	}
	return traceFile{file: f, buffered: bufio.NewWriter(f)}, nil
}

// writer is the writer to give the run, or nil for no trace. A nil
// *bufio.Writer must not become a non-nil io.Writer.
func (t traceFile) writer() io.Writer {
	if t.buffered == nil {
		return nil
	}
	return t.buffered
}

// close flushes and closes the file, reporting the first write error (the
// buffered writer remembers it).
func (t traceFile) close() error {
	if t.file == nil {
		return nil
	}
	flushErr := t.buffered.Flush()
	closeErr := t.file.Close()
	if flushErr != nil {
		return flushErr
	}
	return closeErr
}

// shrinkFaults prints the smallest fault set with which the seed still
// fails, as a command to run, and returns it with the recorded schedule of
// its run.
func shrinkFaults(seed uint64, faults scenario.Faults, env environment, stdout io.Writer) (scenario.Faults, *scenario.FaultSchedule) {
	fmt.Fprintf(stdout, "shrinking the fault set (each try is a full run)...\n")
	fails := func(seed uint64, f scenario.Faults) bool {
		result := simulateRecovering(env, scenario.Derive(seed, f), scenario.Options{}, io.Discard)
		return !result.Passed()
	}
	smallest := scenario.ShrinkFaults(seed, faults, fails)
	recording := scenario.NewFaultRecording()
	result := simulateRecovering(env, scenario.Derive(seed, smallest).WithFaultSchedule(recording), scenario.Options{}, io.Discard)
	fmt.Fprintf(stdout, "smallest failing fault set: %s: %s\n", smallest, result.Verdict())
	fmt.Fprintf(stdout, "reproduce: %s\n", reproduceCommand(seed, smallest, false))
	return smallest, recording
}

// writeQuorumHistory writes what a cluster's nodes recorded of the
// controller quorum, as checker.DecodeQuorumJSON reads it.
func writeQuorumHistory(path string, h *checker.QuorumHistory) error {
	var b bytes.Buffer
	if err := checker.EncodeQuorumJSON(&b, h); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func writeHistory(path string, h checker.History) error {
	data, err := json.MarshalIndent(h, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// writeVisualization writes porcupine's view of the first partition that
// is not linearizable. A run that failed only other checks has none, and
// saying so beats leaving the user to look for a file that never came.
func writeVisualization(path string, result scenario.Result) error {
	for _, p := range result.Check.Partitions {
		if p.Verdict == checker.LinearizableOK {
			continue
		}
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		err = checker.Visualize(f, &result.History, p.Partition, checker.Options{})
		if closeErr := f.Close(); err == nil {
			err = closeErr
		}
		return err
	}
	return errAllLinearizable
}

// errAllLinearizable explains a missing --html file; it is a notice, not
// a failure of the command.
var errAllLinearizable = errors.New("nothing written: every partition is linearizable (another check failed)")
