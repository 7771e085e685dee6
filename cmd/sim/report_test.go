package main

import (
	"bytes"
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

// TestCappedReport renders a failed check with 40 lost writes beside rarer
// kinds: at most reportLinesMax anomalies, every kind with its count and
// at least one example, and the path of the full report.
func TestCappedReport(t *testing.T) {
	result := failing(40)
	var out bytes.Buffer
	writeCappedReport(&out, &result.Check, "/tmp/full-report.txt")
	checkGolden(t, "capped-report.golden", out.String())
	anomalyLines := strings.Count(out.String(), "\n    ")
	if anomalyLines != reportLinesMax {
		t.Errorf("%d anomaly lines, want %d", anomalyLines, reportLinesMax)
	}
}

// TestShareLines checks how the report's lines are shared among kinds.
func TestShareLines(t *testing.T) {
	cases := []struct {
		counts   []int
		linesMax int
		want     []int
	}{
		{[]int{1, 40, 2}, 20, []int{1, 17, 2}},
		{[]int{3, 4}, 20, []int{3, 4}},
		{[]int{30, 30}, 20, []int{10, 10}},
		{[]int{5, 5, 5}, 4, []int{2, 1, 1}},
		{nil, 20, nil},
	}
	for _, c := range cases {
		var kinds []kindCount
		for _, n := range c.counts {
			kinds = append(kinds, kindCount{count: n})
		}
		shareLines(kinds, c.linesMax)
		var got []int
		for _, k := range kinds {
			got = append(got, k.shown)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("counts %v, %d lines: shown %v, want %v", c.counts, c.linesMax, got, c.want)
		}
	}
}

// TestFailedRunWritesFullReport checks a failing single run: a capped
// report on stdout, every anomaly in the file it names (by default in the
// report directory, or where --report says), exit status 1.
func TestFailedRunWritesFullReport(t *testing.T) {
	env := fakeEnvironment(t, func(uint64) scenario.Result { return failing(40) })
	chosen := filepath.Join(t.TempDir(), "chosen.txt")
	for _, c := range []struct {
		args []string
		path string
	}{
		{[]string{"--seed", "9", "--faults", "crash", "--shrink=false"}, defaultReportPath(env.reportDirectory, 9, scenario.Faults{"crash": true}, false)},
		{[]string{"--seed", "9", "--faults", "crash", "--shrink=false", "--report", chosen}, chosen},
	} {
		code, stdout, stderr := invoke(env, c.args...)
		if code != 1 {
			t.Errorf("%v: exit %d, want 1; stderr %q", c.args, code, stderr)
		}
		if !strings.Contains(stdout, "  full report (43 anomalies, 2 partitions): "+c.path+"\n") {
			t.Errorf("%v: stdout does not name %s:\n%s", c.args, c.path, stdout)
		}
		if !strings.HasSuffix(stdout, "seed 9: FAIL: nonlinearizable x1, lost-write x40, poll-skip x2\nreproduce: go run ./cmd/sim --seed 9 --faults crash\n") {
			t.Errorf("%v: stdout does not end with the verdict and the reproduce command:\n%s", c.args, stdout)
		}
		full, err := os.ReadFile(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(string(full), "\n  lost-write "); got != 40 {
			t.Errorf("%v: the full report lists %d lost writes, want 40", c.args, got)
		}
	}
	if got := filepath.Base(defaultReportPath("d", 9, scenario.Faults{"crash": true, "network": true}, false)); got != "kafkasim-sim-seed-9-faults-crash,network.txt" {
		t.Errorf("default report name %q", got)
	}
}

// TestQuietFailurePrintsTwoLines checks that --quiet keeps a failure to
// its verdict and reproduce command, and writes a report file only when
// --report asks for one.
func TestQuietFailurePrintsTwoLines(t *testing.T) {
	env := fakeEnvironment(t, func(uint64) scenario.Result { return failing(2) })
	code, stdout, _ := invoke(env, "--seed", "4", "--faults", "none", "--quiet")
	want := "seed 4: FAIL: nonlinearizable x1, lost-write x2, poll-skip x2\nreproduce: go run ./cmd/sim --seed 4 --faults none\n"
	if code != 1 || stdout != want {
		t.Errorf("exit %d, stdout\n%swant\n%s", code, stdout, want)
	}
	if _, err := os.Stat(defaultReportPath(env.reportDirectory, 4, scenario.Faults{}, false)); !os.IsNotExist(err) {
		t.Errorf("--quiet wrote the default report file (stat: %v)", err)
	}
	// An explicit --report is written all the same, without changing stdout.
	chosen := filepath.Join(t.TempDir(), "chosen.txt")
	code, stdout, _ = invoke(env, "--seed", "4", "--faults", "none", "--quiet", "--report", chosen)
	if code != 1 || stdout != want {
		t.Errorf("with --report: exit %d, stdout\n%swant\n%s", code, stdout, want)
	}
	if _, err := os.Stat(chosen); err != nil {
		t.Errorf("--quiet --report: %v", err)
	}
}

// TestOutputFileErrors checks that an output file that cannot be written
// is one line on stderr and exit status 2, after the verdict.
func TestOutputFileErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-directory", "file")
	env := fakeEnvironment(t, func(uint64) scenario.Result { return failing(1) })
	for _, flagName := range []string{"trace", "history", "html", "report"} {
		code, stdout, stderr := invoke(env, "--seed", "5", "--faults", "none", "--"+flagName, missing)
		want := "sim: --" + flagName + ": open " + missing + ": no such file or directory\n"
		if !strings.HasSuffix(stderr, want) || code != 2 || strings.Count(stderr, "sim: --") != 1 {
			t.Errorf("--%s: exit %d, stderr %q, want it to end with %q", flagName, code, stderr, want)
		}
		if flagName == "trace" && stdout != "" {
			t.Errorf("--trace: the bad path should stop the command before any output:\n%s", stdout)
		}
	}
}

// TestShardsSplitASweep checks that the shards of a sweep are disjoint,
// cover every seed, and that each is the documented residue class.
func TestShardsSplitASweep(t *testing.T) {
	var mu sync.Mutex
	var ran []uint64
	env := fakeEnvironment(t, func(seed uint64) scenario.Result {
		mu.Lock()
		ran = append(ran, seed)
		mu.Unlock()
		return passing()
	})
	var all []uint64
	for index := 1; index <= 3; index++ {
		ran = nil
		code, stdout, _ := invoke(env, "--seeds", "10", "--seed", "5", "--faults", "none", "--shard", fmt.Sprintf("%d/3", index))
		if code != 0 {
			t.Fatalf("shard %d/3: exit %d\n%s", index, code, stdout)
		}
		slices.Sort(ran)
		for _, seed := range ran {
			if (seed-5)%3 != uint64(index-1) {
				t.Errorf("shard %d/3 ran seed %d", index, seed)
			}
		}
		summary := fmt.Sprintf("%d passed, 0 failed (seeds 5..14, shard %d/3, faults none)\n", len(ran), index)
		if !strings.HasSuffix(stdout, summary) {
			t.Errorf("shard %d/3: want summary %q:\n%s", index, summary, stdout)
		}
		all = append(all, ran...)
	}
	slices.Sort(all)
	if want := []uint64{5, 6, 7, 8, 9, 10, 11, 12, 13, 14}; !slices.Equal(all, want) {
		t.Errorf("the shards ran %v, want %v", all, want)
	}
}

// TestShardWithoutSeeds checks that a shard left empty (more shards than
// seeds) passes with an empty summary rather than failing a CI job.
func TestShardWithoutSeeds(t *testing.T) {
	env := fakeEnvironment(t, func(uint64) scenario.Result { t.Error("a seed ran"); return passing() })
	code, stdout, _ := invoke(env, "--seeds", "2", "--shard", "3/4", "--faults", "none")
	if want := "0 passed, 0 failed (seeds 1..2, shard 3/4, faults none)\n"; code != 0 || stdout != want {
		t.Errorf("exit %d, stdout %q, want %q", code, stdout, want)
	}
}

// TestPanicFailsOneSeed checks that a run that panics fails its seed and
// the sweep goes on.
func TestPanicFailsOneSeed(t *testing.T) {
	env := fakeEnvironment(t, func(seed uint64) scenario.Result {
		if seed == 2 {
			panic("partition sim-0: high watermark 7 above log end 5\nmore detail")
		}
		return passing()
	})
	code, stdout, _ := invoke(env, "--seeds", "3", "--faults", "none")
	for _, want := range []string{
		"[2/3] FAIL seed 2: FAIL: panic: partition sim-0: high watermark 7 above log end 5\n  reproduce: go run ./cmd/sim --seed 2 --faults none\n",
		"[3/3] ok   seed 3",
		"2 passed, 1 failed (seeds 1..3, faults none)\nfailing seeds: 2\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
}

// TestProgressBar checks the bar's text, and that a sweep drawing it on
// a terminal prints the same standard output and leaves the line clean.
func TestProgressBar(t *testing.T) {
	cases := []struct {
		finished, failed, total int64
		elapsed                 time.Duration
		want                    string
	}{
		{0, 0, 10, 0, "[                              ] 0/10 seeds, 0 failed, 0s"},
		{3, 1, 10, 30 * time.Second, "[=========                     ] 3/10 seeds, 1 failed, 30s, about 1m10s left"},
		{10, 0, 10, 100 * time.Second, "[==============================] 10/10 seeds, 0 failed, 1m40s"},
		{0, 0, 0, 0, "[                              ] 0/0 seeds, 0 failed, 0s"},
	}
	for _, c := range cases {
		if got := renderProgress(c.finished, c.failed, c.total, c.elapsed); got != c.want {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}

	env := fakeEnvironment(t, func(uint64) scenario.Result { return passing() })
	_, plain, _ := invoke(env, "--seeds", "3", "--faults", "none")
	var terminal bytes.Buffer
	env.progress = &terminal
	_, withBar, _ := invoke(env, "--seeds", "3", "--faults", "none")
	if withBar != plain {
		t.Errorf("the progress bar changed stdout:\n%s\nwant\n%s", withBar, plain)
	}
	if !strings.Contains(terminal.String(), "3/3 seeds") || !strings.HasSuffix(terminal.String(), "\r\x1b[K") {
		t.Errorf("terminal output %q: want the bar, erased at the end", terminal.String())
	}
}

// TestNonTerminalGetsNoBar checks the terminal test on a regular file.
func TestNonTerminalGetsNoBar(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Error("a regular file was taken for a terminal")
	}
	if machineEnvironment(f).progress != nil {
		t.Error("a progress bar would be drawn into a regular file")
	}
}

// TestUncleanSummary prints the checker's note on unclean elections, capped,
// and nothing for a run without any.
func TestUncleanSummary(t *testing.T) {
	note := "sim-0 settled at 35.234s after 1 unclean election(s); 94 writes acknowledged with a durability promise were lost (offsets 26, 27)"
	check := checker.Result{Checks: []checker.CheckStat{{Name: "unclean-election", Checked: 2, Note: note}}}
	var b strings.Builder
	writeUncleanSummary(&b, &check)
	if got, want := b.String(), "  unclean elections: 2; "+note+"\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	check.Checks[0].Note = strings.Repeat("x", 2*uncleanNoteBytesMax)
	b.Reset()
	writeUncleanSummary(&b, &check)
	if !strings.HasSuffix(b.String(), "...\n") || len(b.String()) > uncleanNoteBytesMax+40 {
		t.Errorf("a long note is not capped: %d bytes", len(b.String()))
	}
	check.Checks[0].Checked = 0
	b.Reset()
	writeUncleanSummary(&b, &check)
	if b.Len() != 0 {
		t.Errorf("printed %q for a run without unclean elections", b.String())
	}
}
