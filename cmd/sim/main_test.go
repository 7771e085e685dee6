package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestSingleRunPrintsOptionsVerdictAndReproduction checks the user-facing
// contract of one run: every derived option, a one-line verdict, the exact
// command that reproduces it, and exit status 0 for a passing seed.
func TestSingleRunPrintsOptionsVerdictAndReproduction(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"--seed", "3", "--faults", "crash,network"}, &out, &errOut)
	text := out.String()
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, text, errOut.String())
	}
	for _, want := range []string{"seed=3", "faults=crash,network", "partitions=", "seed 3: OK", "reproduce: go run ./cmd/sim --seed 3 --faults crash,network"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

// TestSweepCountsSeeds checks the --seeds summary line.
func TestSweepCountsSeeds(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"--seeds", "2", "--faults", "none"}, &out, &out); code != 0 {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "2 passed, 0 failed") {
		t.Fatalf("no summary:\n%s", out.String())
	}
}

// TestBadFlagsExitTwo checks that misuse is a readable error with status 2.
func TestBadFlagsExitTwo(t *testing.T) {
	for _, args := range [][]string{{"--faults", "meteor"}, {"--seed", "x"}, {"extra"}} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 || errOut.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut.String())
		}
	}
}
