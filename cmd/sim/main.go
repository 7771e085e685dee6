// Command sim runs seeded, deterministic simulations of a broker and its
// clients under faults, checks every recorded history, and prints a
// verdict and the command that reproduces the run.
//
//	sim --seed 7 --faults all        one run
//	sim --seeds 100 --faults all     seeds 1..100, one verdict line each
//
// Exit status 0 only when every property held in every run.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/kafkasim/kafkasim/checker"
	"github.com/kafkasim/kafkasim/sim/scenario"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("sim", flag.ContinueOnError)
	flags.SetOutput(stderr)
	seed := flags.Uint64("seed", 1, "seed of the run; everything the run does follows from it")
	seeds := flags.Int("seeds", 0, "run seeds --seed .. --seed+N-1 and print one verdict line each")
	faultsFlag := flags.String("faults", "all", "none, all, or a comma-separated list of: "+strings.Join(scenario.AllFaults, ", "))
	tracePath := flags.String("trace", "", "write the event trace of the run to this file")
	historyPath := flags.String("history", "", "write the recorded history (JSON) to this file")
	htmlPath := flags.String("html", "", "on failure, write porcupine's visualization of the first failing partition here")
	quiet := flags.Bool("quiet", false, "print only the verdict line")
	shrink := flags.Bool("shrink", true, "on failure, look for the smallest fault set that still fails with this seed")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "sim: unexpected argument %q\n", flags.Arg(0))
		return 2
	}
	faults, err := scenario.ParseFaults(*faultsFlag)
	if err != nil {
		fmt.Fprintf(stderr, "sim: --faults: %v\n", err)
		return 2
	}
	if *seeds > 0 {
		return sweep(*seed, *seeds, faults, stdout)
	}
	code := single(*seed, faults, *tracePath, *historyPath, *htmlPath, *quiet, stdout, stderr)
	if code == 1 && *shrink && faults.String() != "none" {
		shrinkFaults(*seed, faults, stdout)
	}
	return code
}

func single(seed uint64, faults scenario.Faults, tracePath, historyPath, htmlPath string, quiet bool, stdout, stderr io.Writer) int {
	cfg := scenario.Derive(seed, faults)
	if !quiet {
		for _, line := range cfg.Lines() {
			fmt.Fprintln(stdout, "  "+line)
		}
	}
	var opts scenario.Options
	if tracePath != "" {
		f, err := os.Create(tracePath)
		if err != nil {
			fmt.Fprintf(stderr, "sim: --trace: %v\n", err)
			return 2
		}
		w := bufio.NewWriter(f)
		defer func() { w.Flush(); f.Close() }()
		opts.Trace = w
	}
	start := time.Now()
	result := scenario.Run(cfg, opts)
	if historyPath != "" {
		if err := writeHistory(historyPath, result.History); err != nil {
			fmt.Fprintf(stderr, "sim: --history: %v\n", err)
		}
	}
	if !quiet {
		fmt.Fprintf(stdout, "  ops=%d events=%d virtual=%v wall=%v trace=%s\n",
			len(result.History.Ops), result.Events, result.VirtualTime.Round(time.Millisecond),
			time.Since(start).Round(time.Millisecond), result.TraceHash[:16])
		if !result.Passed() && result.Err == nil {
			fmt.Fprintln(stdout, result.Check.Report())
		}
	}
	fmt.Fprintf(stdout, "seed %d: %s\n", seed, result.Verdict())
	fmt.Fprintf(stdout, "reproduce: go run ./cmd/sim --seed %d --faults %s\n", seed, faults)
	if !result.Passed() && htmlPath != "" {
		writeVisualization(htmlPath, result, stderr)
	}
	if result.Passed() {
		return 0
	}
	return 1
}

// shrinkFaults prints the smallest fault set with which the seed still
// fails, as a command to run.
func shrinkFaults(seed uint64, faults scenario.Faults, stdout io.Writer) {
	fmt.Fprintf(stdout, "shrinking the fault set (each try is a full run)...\n")
	fails := func(seed uint64, f scenario.Faults) bool {
		result := scenario.Run(scenario.Derive(seed, f), scenario.Options{})
		return !result.Passed()
	}
	smallest := scenario.ShrinkFaults(seed, faults, fails)
	result := scenario.Run(scenario.Derive(seed, smallest), scenario.Options{})
	fmt.Fprintf(stdout, "smallest failing fault set: %s: %s\n", smallest, result.Verdict())
	fmt.Fprintf(stdout, "reproduce: go run ./cmd/sim --seed %d --faults %s\n", seed, smallest)
}

func sweep(first uint64, count int, faults scenario.Faults, stdout io.Writer) int {
	failed := 0
	start := time.Now()
	for i := range count {
		seed := first + uint64(i)
		result := scenario.Run(scenario.Derive(seed, faults), scenario.Options{})
		status := "ok  "
		if !result.Passed() {
			status = "FAIL"
			failed++
		}
		fmt.Fprintf(stdout, "[%d/%d] %s seed %d: %s\n", i+1, count, status, seed, result.Verdict())
	}
	fmt.Fprintf(stdout, "%d passed, %d failed (faults %s, %v)\n", count-failed, failed, faults, time.Since(start).Round(time.Second))
	if failed > 0 {
		return 1
	}
	return 0
}

func writeHistory(path string, h checker.History) error {
	data, err := json.MarshalIndent(h, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

func writeVisualization(path string, result scenario.Result, stderr io.Writer) {
	for _, p := range result.Check.Partitions {
		if p.Verdict == checker.LinearizableOK {
			continue
		}
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintf(stderr, "sim: --html: %v\n", err)
			return
		}
		defer f.Close()
		if err := checker.Visualize(f, &result.History, p.Partition, checker.Options{}); err != nil {
			fmt.Fprintf(stderr, "sim: --html: %v\n", err)
		}
		return
	}
}
