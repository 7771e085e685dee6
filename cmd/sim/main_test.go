package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kafkasim/kafkasim/checker"
	"github.com/kafkasim/kafkasim/sim/scenario"
)

// update rewrites the golden files: go test ./cmd/sim -update.
var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// checkGolden compares got with testdata/name, or rewrites the file.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/sim -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test ./cmd/sim -update rewrites it):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// testEnvironment runs real simulations on two CPUs, keeps full reports
// in a temporary directory and never draws a progress bar.
func testEnvironment(t *testing.T) environment {
	return environment{simulate: scenario.Run, cpus: 2, reportDirectory: t.TempDir(), now: time.Now}
}

// fakeEnvironment replaces the simulation with fake, for failures on
// demand at no cost.
func fakeEnvironment(t *testing.T, fake func(seed uint64) scenario.Result) environment {
	env := testEnvironment(t)
	env.simulate = func(cfg scenario.Config, _ scenario.Options) scenario.Result {
		result := fake(cfg.Seed)
		result.Config = cfg
		return result
	}
	return env
}

// passing is a fake run in which every property held.
func passing() scenario.Result {
	return scenario.Result{
		Check:     checker.Result{Status: checker.StatusOK, Verdict: "OK: 1 partitions, 10 ops, linearizable, 0 anomalies"},
		TraceHash: "0123456789abcdef0123456789abcdef",
	}
}

// failing is a fake run with lostWrites lost writes on partition sim-0,
// two poll skips, and partition sim-1 not linearizable.
func failing(lostWrites int) scenario.Result {
	result := passing()
	tp := func(p int32) checker.TopicPartition { return checker.TopicPartition{Topic: "sim", Partition: p} }
	var anomalies []checker.Anomaly
	anomalies = append(anomalies, checker.Anomaly{Kind: checker.AnomalyNonlinearizable, Partition: tp(1), Offset: -1,
		Explanation: "no order of the 12 operations fits one log."})
	for i := range lostWrites {
		anomalies = append(anomalies, checker.Anomaly{Kind: checker.AnomalyLostWrite, Partition: tp(0), Offset: int64(i),
			Explanation: fmt.Sprintf("op %d acknowledged p0.0-%d at offset %d; the drain read something else.", i, i, i)})
	}
	for i := range 2 {
		anomalies = append(anomalies, checker.Anomaly{Kind: checker.AnomalyPollSkip, Partition: tp(0), Offset: int64(100 + i),
			Explanation: fmt.Sprintf("consumer c0 skipped offset %d.", 100+i)})
	}
	result.Check = checker.Result{
		Status:    checker.StatusFail,
		Verdict:   fmt.Sprintf("FAIL: nonlinearizable x1, lost-write x%d, poll-skip x2", lostWrites),
		Anomalies: anomalies,
		Partitions: []checker.PartitionResult{
			{Partition: tp(0), Ops: 40, Linearized: 38, Verdict: checker.LinearizableOK, Method: checker.MethodOffsets},
			{Partition: tp(1), Ops: 12, Linearized: 12, Verdict: checker.LinearizableIllegal, Method: checker.MethodOffsets},
		},
	}
	return result
}

// invoke runs the command and returns its exit status and outputs.
func invoke(env environment, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut, env)
	return code, out.String(), errOut.String()
}

// TestSingleRunPrintsOptionsVerdictAndReproduction checks the user-facing
// contract of one real run: every derived option, a one-line verdict, the
// exact command that reproduces it, and exit status 0 for a passing seed.
func TestSingleRunPrintsOptionsVerdictAndReproduction(t *testing.T) {
	code, stdout, stderr := invoke(testEnvironment(t), "--seed", "3", "--faults", "crash,network")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"seed=3", "faults=crash,network", "partitions=", "seed 3: OK", "reproduce: go run ./cmd/sim --seed 3 --faults crash,network"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}

// TestSameSeedSameStdout runs the README's command twice in one process
// and requires identical standard output: the wall time, which differs
// between the runs, must be on standard error only.
func TestSameSeedSameStdout(t *testing.T) {
	env := testEnvironment(t)
	args := []string{"--seed", "7", "--faults", "all"}
	firstCode, first, firstErr := invoke(env, args...)
	secondCode, second, _ := invoke(env, args...)
	if first != second || firstCode != secondCode {
		t.Fatalf("two runs of one seed differ (exit %d and %d):\n--- first\n%s--- second\n%s", firstCode, secondCode, first, second)
	}
	if !strings.Contains(first, "reproduce: go run ./cmd/sim --seed 7 --faults all") {
		t.Errorf("stdout lacks the reproduce command:\n%s", first)
	}
	if !strings.Contains(firstErr, "of wall time") || strings.Contains(first, "wall") {
		t.Errorf("the wall time belongs on stderr only:\nstdout:\n%sstderr:\n%s", first, firstErr)
	}
}

// TestHelp checks that --help and -h print the description, the usage
// and examples on stdout and exit 0.
func TestHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h", "-help"} {
		code, stdout, stderr := invoke(testEnvironment(t), arg)
		if code != 0 || stderr != "" {
			t.Errorf("%s: exit %d, stderr %q", arg, code, stderr)
		}
		checkGolden(t, "help.golden", stdout)
	}
}

// TestHelpNamesEveryFlag keeps the hand-written help in step with the
// flags that parseOptions defines.
func TestHelpNamesEveryFlag(t *testing.T) {
	flags, _, _ := newFlagSet(&options{})
	flags.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(helpText, "\n  --"+f.Name+" ") {
			t.Errorf("help does not describe --%s", f.Name)
		}
	})
}

// TestArgumentErrors checks that every kind of misuse is one line naming
// the problem plus a pointer to --help, with exit status 2 and no run.
func TestArgumentErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--seeds", "-5"}, `invalid value "-5" for flag --seeds: want a whole number from 1 to 1000000000`},
		{[]string{"--seeds", "0"}, `invalid value "0" for flag --seeds: want a whole number from 1 to 1000000000`},
		{[]string{"--seeds", "many"}, `invalid value "many" for flag --seeds: want a whole number from 1 to 1000000000`},
		{[]string{"--seed", "x"}, `invalid value "x" for flag --seed: want a whole number from 0 to 18446744073709551615`},
		{[]string{"--seed", "-1"}, `invalid value "-1" for flag --seed: want a whole number from 0 to 18446744073709551615`},
		{[]string{"--faults", "meteor"}, `--faults: unknown fault "meteor" (known: none, all, bitflips, clients, clock, cluster, corruption, crash, disk-errors, disk-full, network, partition, pause, powerloss, retention)`},
		{[]string{"--frobnicate"}, `flag provided but not defined: --frobnicate`},
		{[]string{"-frobnicate"}, `flag provided but not defined: --frobnicate`},
		{[]string{"--seeds"}, `flag needs an argument: --seeds`},
		{[]string{"--quiet=maybe"}, `invalid boolean value "maybe" for --quiet: parse error`},
		{[]string{"--seeds", "for flag -x"}, `invalid value "for flag -x" for flag --seeds: want a whole number from 1 to 1000000000`},
		{[]string{"extra"}, `unexpected argument "extra": every option is a flag, such as --seed 7`},
		{[]string{"--seeds", "10", "--trace", "t.txt"}, `--trace does not apply to a sweep (--seeds); rerun one seed with its reproduce command to use it`},
		{[]string{"--seeds", "10", "--history", "h", "--html", "h.html", "--quiet"}, `--history, --html, --quiet do not apply to a sweep (--seeds); rerun one seed with its reproduce command to use them`},
		{[]string{"--seeds", "10", "--shrink=false", "--report", "r"}, `--report, --shrink do not apply to a sweep (--seeds); rerun one seed with its reproduce command to use them`},
		{[]string{"--parallel", "4"}, `--parallel applies only to a sweep; add --seeds COUNT`},
		{[]string{"--seed", "3", "--shard", "1/2", "--parallel", "2"}, `--parallel, --shard apply only to a sweep; add --seeds COUNT`},
		{[]string{"--seeds", "10", "--parallel", "0"}, `invalid value "0" for flag --parallel: want a whole number from 1 to 256`},
		{[]string{"--seeds", "10", "--shard", "3/2"}, `invalid value "3/2" for flag --shard: want I/N with 1 <= I <= N, such as 2/4 for the second of four shards`},
		{[]string{"--seeds", "10", "--shard", "0/2"}, `invalid value "0/2" for flag --shard: want I/N with 1 <= I <= N, such as 2/4 for the second of four shards`},
		{[]string{"--seeds", "10", "--shard", "two"}, `invalid value "two" for flag --shard: want I/N with 1 <= I <= N, such as 2/4 for the second of four shards`},
		{[]string{"--seeds", "2", "--seed", "18446744073709551615"}, `--seed 18446744073709551615 with --seeds 2 goes past the largest seed, 18446744073709551615`},
		{[]string{"--fault-events", "meteor#1"}, `invalid value "meteor#1" for flag --fault-events: unknown fault event kind "meteor" in "meteor#1" (known: client-crash, clock-jump, crash, damage, disk-error, disk-full, network, partition, pause)`},
		{[]string{"--fault-events", "crash"}, `invalid value "crash" for flag --fault-events: "crash" is not a fault event: want KIND#N such as crash#3, or none`},
		{[]string{"--seeds", "10", "--fault-events", "none"}, `--fault-events does not apply to a sweep (--seeds); rerun one seed with its reproduce command to use it`},
	}
	ran := false
	env := fakeEnvironment(t, func(uint64) scenario.Result { ran = true; return passing() })
	for _, c := range cases {
		code, stdout, stderr := invoke(env, c.args...)
		want := "sim: " + c.want + "\nrun 'sim --help' for usage\n"
		if code != 2 || stdout != "" || stderr != want {
			t.Errorf("%v: exit %d\nstdout %q\nstderr %q\nwant   %q", c.args, code, stdout, stderr, want)
		}
	}
	if ran {
		t.Error("a run started despite bad arguments")
	}
}

// TestSweepSummaryAndReproduceCommands checks a sweep's whole output with
// two failing seeds: one line per seed in order, a reproduce command
// under each failure, and the summary naming the failing seeds.
func TestSweepSummaryAndReproduceCommands(t *testing.T) {
	env := fakeEnvironment(t, func(seed uint64) scenario.Result {
		if seed == 12 || seed == 14 {
			return failing(3)
		}
		return passing()
	})
	code, stdout, stderr := invoke(env, "--seeds", "6", "--seed", "10", "--faults", "crash,network", "--parallel", "3")
	if code != 1 {
		t.Errorf("exit %d, want 1; stderr %q", code, stderr)
	}
	checkGolden(t, "sweep.golden", stdout)
	if strings.Contains(stderr, "\r") {
		t.Errorf("a progress bar was drawn although stderr is not a terminal: %q", stderr)
	}
}

// TestSweepOfPassingSeedsExitsZero checks the summary of a clean sweep
// with real runs, the README's shape of command.
func TestSweepOfPassingSeedsExitsZero(t *testing.T) {
	code, stdout, stderr := invoke(testEnvironment(t), "--seeds", "2", "--faults", "none")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.HasSuffix(stdout, "2 passed, 0 failed (seeds 1..2, faults none)\n") {
		t.Fatalf("no summary:\n%s", stdout)
	}
}

// TestParallelSweepPrintsWhatSerialPrints runs a few real seeds on one
// worker and on four and requires the same bytes.
func TestParallelSweepPrintsWhatSerialPrints(t *testing.T) {
	env := testEnvironment(t)
	args := []string{"--seeds", "4", "--seed", "20", "--faults", "crash"}
	serialCode, serial, _ := invoke(env, append(args, "--parallel", "1")...)
	parallelCode, parallel, _ := invoke(env, append(args, "--parallel", "4")...)
	if serial != parallel || serialCode != parallelCode {
		t.Fatalf("parallel output differs (exit %d and %d):\n--- serial\n%s--- parallel\n%s", serialCode, parallelCode, serial, parallel)
	}
	if strings.Count(serial, "\n") != 5 {
		t.Errorf("want 4 seed lines and a summary:\n%s", serial)
	}
}

// TestReorderBuffer forces the runs to finish in reverse seed order (each
// waits for the next seed's run to finish) and requires the output in
// seed order all the same.
func TestReorderBuffer(t *testing.T) {
	const seeds = 5
	// finished[k] is closed when seed k's run ends.
	var finished [seeds + 1]chan struct{}
	for i := range finished {
		finished[i] = make(chan struct{})
	}
	var mu sync.Mutex
	var order []uint64
	env := fakeEnvironment(t, func(seed uint64) scenario.Result {
		if seed < seeds {
			<-finished[seed+1]
		}
		mu.Lock()
		order = append(order, seed)
		mu.Unlock()
		close(finished[seed])
		return passing()
	})
	code, stdout, _ := invoke(env, "--seeds", fmt.Sprint(seeds), "--seed", "1", "--faults", "none", "--parallel", fmt.Sprint(seeds))
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stdout)
	}
	if !slices.Equal(order, []uint64{5, 4, 3, 2, 1}) {
		t.Fatalf("runs finished in order %v; the test needs the reverse order", order)
	}
	var want strings.Builder
	for seed := 1; seed <= seeds; seed++ {
		fmt.Fprintf(&want, "[%d/%d] ok   seed %d: %s\n", seed, seeds, seed, passing().Check.Verdict)
	}
	want.WriteString("5 passed, 0 failed (seeds 1..5, faults none)\n")
	if stdout != want.String() {
		t.Errorf("got\n%swant\n%s", stdout, want.String())
	}
}

// TestClusterRunWritesQuorumHistory runs a cluster seed without faults:
// it prints the cluster's options and both verdicts, states the liveness
// bound, and --quorum-history writes a history that CheckQuorum reads
// back. A single-broker seed writes nothing and says why.
func TestClusterRunWritesQuorumHistory(t *testing.T) {
	faults, _ := scenario.ParseFaults(scenario.FaultCluster)
	seed := uint64(1)
	for scenario.Derive(seed, faults).Cluster.Nodes == 0 {
		seed++
	}
	path := filepath.Join(t.TempDir(), "quorum.json")
	code, stdout, stderr := invoke(testEnvironment(t), "--seed", fmt.Sprint(seed), "--faults", "cluster", "--quorum-history", path)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"cluster.nodes=", "cluster.voters=3", "; quorum OK: ", "after the heal (bound 30s)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	history, err := checker.DecodeQuorumJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if got := checker.CheckQuorum(&history, checker.QuorumCheckConfig{}); got.Status != checker.StatusOK || len(history.Voters) != 3 {
		t.Fatalf("the written history: %d voters, %s", len(history.Voters), got.Verdict)
	}

	single := filepath.Join(t.TempDir(), "none.json")
	code, _, stderr = invoke(testEnvironment(t), "--seed", "3", "--faults", "none", "--quorum-history", single)
	if _, err := os.Stat(single); code != 0 || err == nil || !strings.Contains(stderr, "has no quorum") {
		t.Fatalf("single broker: exit %d, file %v, stderr:\n%s", code, err, stderr)
	}
}

// TestSwarmFlag checks when a run is swarmed: by default with --faults
// all only, and as --swarm says otherwise.
func TestSwarmFlag(t *testing.T) {
	cases := []struct {
		args []string
		want bool
	}{
		{nil, true},
		{[]string{"--faults", "all"}, true},
		{[]string{"--faults", "all", "--swarm=false"}, false},
		{[]string{"--faults", "crash,network"}, false},
		{[]string{"--faults", "crash,network", "--swarm"}, true},
		{[]string{"--faults", "none"}, false},
		{[]string{"--seeds", "3", "--faults", "all", "--swarm=false"}, false},
	}
	for _, c := range cases {
		o, err := parseOptions(c.args, 2)
		if err != nil || o.swarm != c.want {
			t.Errorf("%v: swarm %v (error %v), want %v", c.args, o.swarm, err, c.want)
		}
	}
}

// TestSwarmedRunPrintsItsSubset runs a seed with --faults all: the faults
// line names the seed's subset and its origin, the reproduce command is
// the short one, and --swarm=false runs every fault with a reproduce
// command that says so.
func TestSwarmedRunPrintsItsSubset(t *testing.T) {
	all, _ := scenario.ParseFaults("all")
	env := fakeEnvironment(t, func(uint64) scenario.Result { return passing() })
	_, stdout, _ := invoke(env, "--seed", "7")
	want := "  faults=" + scenario.Swarm(7, all).String() + " (swarm: "
	if !strings.Contains(stdout, want) || !strings.HasSuffix(stdout, "reproduce: go run ./cmd/sim --seed 7 --faults all\n") {
		t.Errorf("swarmed: output lacks %q or the reproduce command:\n%s", want, stdout)
	}
	_, stdout, _ = invoke(env, "--seed", "7", "--swarm=false")
	if !strings.Contains(stdout, "  faults=all\n") || !strings.HasSuffix(stdout, "reproduce: go run ./cmd/sim --seed 7 --faults all --swarm=false\n") {
		t.Errorf("--swarm=false: output lacks every fault or the reproduce command:\n%s", stdout)
	}
}

// TestReproduceCommandsReplay runs real seeds with each combination of
// --faults and --swarm, then runs the command each printed: standard
// output must be the same bytes, trace hash included.
func TestReproduceCommandsReplay(t *testing.T) {
	env := testEnvironment(t)
	for _, args := range [][]string{
		{"--seed", "5", "--faults", "all"},
		{"--seed", "5", "--faults", "all", "--swarm=false"},
		{"--seed", "5", "--faults", "crash,network,clock", "--swarm"},
	} {
		_, first, _ := invoke(env, args...)
		_, reproduce, found := strings.Cut(first, "\nreproduce: go run ./cmd/sim ")
		if !found {
			t.Fatalf("%v: no reproduce command:\n%s", args, first)
		}
		again := strings.Fields(reproduce)
		if _, second, _ := invoke(env, again...); second != first {
			t.Errorf("%v: the reproduce command %v printed something else:\n--- first\n%s--- second\n%s", args, again, first, second)
		}
	}
}

// TestSwarmedSweepNamesEachFailuresFaults checks a swarmed sweep's output
// with two failing seeds: each failure's reproduce command is the short
// one, followed by the subset it ran, and the summary says the sweep was
// swarmed.
func TestSwarmedSweepNamesEachFailuresFaults(t *testing.T) {
	env := fakeEnvironment(t, func(seed uint64) scenario.Result {
		if seed == 12 || seed == 14 {
			return failing(3)
		}
		return passing()
	})
	code, stdout, stderr := invoke(env, "--seeds", "6", "--seed", "10", "--faults", "all", "--parallel", "3")
	if code != 1 {
		t.Errorf("exit %d, want 1; stderr %q", code, stderr)
	}
	checkGolden(t, "sweep-swarm.golden", stdout)
}
