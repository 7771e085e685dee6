package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// consumeChildCommand is the hidden first argument that makes kbench run
// one kgo consume and print its throughput as JSON. Every kgo consume runs
// in such a fresh process: the Go runtime sizes its garbage collection to
// the live heap, and in one long-lived process the heap the earlier cases
// left (latency samples, payloads) made later cases collect less often,
// so whichever server was measured later looked faster. Against a broker
// and kfake in processes of their own, a client with an equal heap ran
// 93 to 99 collections per million 100 B records with both.
const consumeChildCommand = "consume-child"

// consumeChildResult is what the child prints.
type consumeChildResult struct {
	Records    int64 `json:"records"`
	ValueBytes int64 `json:"value_bytes"`
	ElapsedNs  int64 `json:"elapsed_ns"`
}

// consumeInChild runs consumeAll in a fresh kbench process, with a CPU
// profile of it into profile when that is set.
func consumeInChild(ctx context.Context, addr, topic string, records int, fetch fetchSizes, profile string) (throughput, error) {
	self, err := os.Executable()
	if err != nil {
		return throughput{}, err
	}
	cmd := exec.CommandContext(ctx, self, consumeChildCommand, addr, topic, strconv.Itoa(records),
		strconv.Itoa(int(fetch.bytesMax)), strconv.Itoa(int(fetch.partitionBytesMax)), profile)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return throughput{}, fmt.Errorf("consume child: %w", err)
	}
	var r consumeChildResult
	if err := json.Unmarshal(out, &r); err != nil {
		return throughput{}, fmt.Errorf("consume child printed %q: %w", out, err)
	}
	return throughput{records: r.Records, valueBytes: r.ValueBytes, elapsed: time.Duration(r.ElapsedNs)}, nil
}

// serveConsumeChild is the child's side: ADDR TOPIC RECORDS FETCH_BYTES
// PARTITION_BYTES PROFILE (empty for none).
func serveConsumeChild(args []string, stdout, stderr io.Writer) int {
	if len(args) != 6 {
		fmt.Fprintln(stderr, "kbench: consume-child takes ADDR TOPIC RECORDS FETCH_BYTES PARTITION_BYTES PROFILE")
		return exitArgument
	}
	numbers := make([]int, 3)
	for i, text := range args[2:5] {
		n, err := strconv.Atoi(text)
		if err != nil || n < 1 {
			fmt.Fprintf(stderr, "kbench: consume-child: bad number %q\n", text)
			return exitArgument
		}
		numbers[i] = n
	}
	stopProfile, err := startClientProfile(args[5])
	if err != nil {
		fmt.Fprintf(stderr, "kbench: %v\n", err)
		return exitFailure
	}
	ctx, stop := signalContext()
	defer stop()
	fetch := fetchSizes{bytesMax: int32(numbers[1]), partitionBytesMax: int32(numbers[2])}
	got, err := consumeAll(ctx, args[0], args[1], numbers[0], fetch)
	stopProfile()
	if err != nil {
		fmt.Fprintf(stderr, "kbench: %v\n", err)
		return exitFailure
	}
	if err := json.NewEncoder(stdout).Encode(consumeChildResult{Records: got.records, ValueBytes: got.valueBytes, ElapsedNs: int64(got.elapsed)}); err != nil {
		return exitFailure
	}
	return exitOK
}
