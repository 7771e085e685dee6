package scenario

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestSameSeedReplaysByteForByte runs whole simulations twice and compares
// the hash of every event and the recorded history: a seed must fix the
// run completely, faults included. Different seeds must differ.
func TestSameSeedReplaysByteForByte(t *testing.T) {
	faults, _ := ParseFaults("all")
	hashes := map[string]uint64{}
	for _, seed := range []uint64{1, 2, 3} {
		first := Run(Derive(seed, faults), Options{})
		second := Run(Derive(seed, faults), Options{})
		if first.TraceHash != second.TraceHash {
			t.Fatalf("seed %d: trace hashes differ: %s vs %s", seed, first.TraceHash, second.TraceHash)
		}
		a, _ := json.Marshal(first.History)
		b, _ := json.Marshal(second.History)
		if !bytes.Equal(a, b) {
			t.Fatalf("seed %d: histories differ", seed)
		}
		if other, ok := hashes[first.TraceHash]; ok {
			t.Fatalf("seeds %d and %d gave the same trace", other, seed)
		}
		hashes[first.TraceHash] = seed
	}
}

// sweep runs seeds first..first+count-1 with faults and fails on every seed
// whose verdict is not OK, naming the command that reproduces it.
func sweep(t *testing.T, faultList string, first uint64, count int) {
	t.Helper()
	faults, err := ParseFaults(faultList)
	if err != nil {
		t.Fatal(err)
	}
	for seed := first; seed < first+uint64(count); seed++ {
		result := Run(Derive(seed, faults), Options{})
		if !result.Passed() {
			t.Errorf("seed %d: %s\nreproduce: go run ./cmd/sim --seed %d --faults %s", seed, result.Verdict(), seed, faults)
		}
		if len(result.History.Ops) == 0 {
			t.Errorf("seed %d: the run recorded no operations", seed)
		}
	}
}

// TestSeedsWithoutFaults checks the workload and the checker agree on
// fault-free runs: anything failing here is a bug in the broker, the
// clients, or the harness itself.
func TestSeedsWithoutFaults(t *testing.T) { sweep(t, "none", 1, 10) }

// TestSeedsWithFaults sweeps seeds with every fault class except read bit
// flips combined with restarts (see TestBitFlipRegressions).
func TestSeedsWithFaults(t *testing.T) {
	sweep(t, "clients,clock,crash,disk-errors,disk-full,network,pause,powerloss", 1, 40)
}

// TestBitFlipRegressions replays seeds that once failed with read bit
// flips: seed 4 had a flipped base offset reach a consumer (the broker now
// checks the headers it serves), seed 23 had a flipped control flag make a
// consumer skip a batch (the client now checks the CRC before trusting any
// header field).
func TestBitFlipRegressions(t *testing.T) {
	for _, seed := range []uint64{4, 23} {
		sweep(t, "bitflips", seed, 1)
	}
}

// TestLinesNameEveryOption checks that the printed options describe the
// run: the seed, the faults, and one line per producer and consumer.
func TestLinesNameEveryOption(t *testing.T) {
	faults, _ := ParseFaults("all")
	cfg := Derive(5, faults)
	text := strings.Join(cfg.Lines(), "\n")
	for _, want := range []string{"seed=5", "faults=all", "partitions=", "producer.0=", "fault.crash.every="} {
		if !strings.Contains(text, want) {
			t.Errorf("options lack %q:\n%s", want, text)
		}
	}
	if got := strings.Count(text, "producer."); got != len(cfg.Producers) {
		t.Errorf("%d producer lines for %d producers", got, len(cfg.Producers))
	}
}

// TestParseFaults checks the --faults syntax and its errors.
func TestParseFaults(t *testing.T) {
	if f, err := ParseFaults("none"); err != nil || f.String() != "none" {
		t.Fatalf("none: %v %v", f, err)
	}
	if f, err := ParseFaults("all"); err != nil || f.String() != "all" {
		t.Fatalf("all: %v %v", f, err)
	}
	if f, err := ParseFaults("crash,network"); err != nil || f.String() != "crash,network" {
		t.Fatalf("list: %v %v", f, err)
	}
	if _, err := ParseFaults("crash,meteor"); err == nil || !strings.Contains(err.Error(), `"meteor"`) {
		t.Fatalf("unknown fault: %v", err)
	}
}
