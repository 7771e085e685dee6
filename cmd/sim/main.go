// Command sim runs seeded, deterministic simulations of a broker and its
// clients under faults, checks every recorded history, and prints a
// verdict and the command that reproduces the run.
//
//	sim --seed 7 --faults all        one run
//	sim --seeds 100 --faults all     seeds 1..100, one verdict line each
//
// Standard output depends only on the arguments (and, for the path of the
// full anomaly report, on the temporary directory), so that two runs of
// one seed can be compared byte for byte; wall-clock times and the
// progress bar go to standard error. Exit status 0 only when every
// property held in every run; docs/cli.md describes every flag.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/kafkasim/kafkasim/sim/scenario"
)

// Exit statuses.
const (
	exitPassed = 0
	// exitFailed: a property failed, or a run made no progress.
	exitFailed = 1
	// exitUsage: bad arguments, or an output file could not be written.
	exitUsage = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, machineEnvironment(os.Stderr)))
}

// environment is what the command takes from the machine it runs on, kept
// apart so that tests can replace each part.
type environment struct {
	// simulate runs one configuration: scenario.Run, or a fake in tests
	// that need failing runs on demand.
	simulate func(scenario.Config, scenario.Options) scenario.Result
	// cpus is the default of --parallel.
	cpus int
	// reportDirectory holds the full anomaly report when --report is not
	// given.
	reportDirectory string
	// progress receives a sweep's progress bar; nil when standard error is
	// not a terminal, so that logs and tests stay clean.
	progress io.Writer
	// now reads the wall clock, for times printed on standard error only.
	now func() time.Time
}

// machineEnvironment is the environment of a real invocation.
func machineEnvironment(stderr *os.File) environment {
	env := environment{
		simulate:        scenario.Run,
		cpus:            runtime.NumCPU(),
		reportDirectory: os.TempDir(),
		now:             time.Now,
	}
	if isTerminal(stderr) {
		env.progress = stderr
	}
	return env
}

// isTerminal reports whether f is a character device: a terminal (or
// /dev/null, where a progress bar does no harm). Checking the file mode
// needs no dependency.
func isTerminal(f *os.File) bool {
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// run is the whole command: it returns the exit status.
func run(args []string, stdout, stderr io.Writer, env environment) int {
	opts, err := parseOptions(args, env.cpus)
	if errors.Is(err, errHelp) {
		io.WriteString(stdout, helpText)
		return exitPassed
	}
	if err != nil {
		fmt.Fprintf(stderr, "sim: %v\nrun 'sim --help' for usage\n", err)
		return exitUsage
	}
	if opts.sweep() {
		return sweep(opts, env, stdout, stderr)
	}
	return single(opts, env, stdout, stderr)
}

// derive is the configuration of one seed: with a swarmed subset of
// faults, or with every one of them.
func derive(seed uint64, faults scenario.Faults, swarm bool) scenario.Config {
	if swarm {
		return scenario.DeriveSwarm(seed, faults)
	}
	return scenario.Derive(seed, faults)
}

// swarmFlag is the --swarm flag that asks for swarm with faults: empty
// when swarm is the default for faults, so that the usual commands stay
// short.
func swarmFlag(faults scenario.Faults, swarm bool) string {
	switch {
	case swarm && !scenario.SwarmByDefault(faults):
		return "--swarm"
	case !swarm && scenario.SwarmByDefault(faults):
		return "--swarm=false"
	}
	return ""
}

// faultArguments are the flags that give faults and swarm.
func faultArguments(faults scenario.Faults, swarm bool) string {
	text := "--faults " + faults.String()
	if flag := swarmFlag(faults, swarm); flag != "" {
		text += " " + flag
	}
	return text
}

// reproduceCommand is the command that replays one seed exactly.
func reproduceCommand(seed uint64, faults scenario.Faults, swarm bool) string {
	return fmt.Sprintf("go run ./cmd/sim --seed %d %s", seed, faultArguments(faults, swarm))
}

// replayCommand is the command that replays one seed exactly with only
// the fault events kept.
func replayCommand(seed uint64, faults scenario.Faults, swarm bool, kept []scenario.FaultEventID) string {
	return reproduceCommand(seed, faults, swarm) + " --fault-events " + scenario.FormatFaultEvents(kept)
}
