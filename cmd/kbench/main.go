// Command kbench measures what users of the broker see: the real broker
// binary runs as its own process and kbench, a separate process, drives it
// with franz-go clients. It reports produce and consume throughput for 1 KiB
// and 100 B records on 1 and 8 partitions, the end-to-end latency (open
// loop: from each record's scheduled send time to the consumer's poll
// returning it, broken into stages seen at the clients' sockets) at half
// of the largest produce rate it measured, the broker's garbage-collection
// share of its CPU while consumers read, and one loopback TCP stream
// measured in the same run as the physical reference every figure is
// divided by. With --kfake it measures franz-go's fake broker (kfake, run
// in a child kbench process) the same way. --latency-rates runs only the
// latency test, at the rates given. --targets cluster measures three
// broker processes forming one cluster, with topics of three replicas,
// against the single broker in the same run. docs/performance.md
// ("Consume path", "End-to-end latency" and "Replication (RF 3)") shows
// runs and how to read them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Exit statuses.
const (
	exitOK       = 0
	exitFailure  = 1
	exitArgument = 2
)

const usageText = `kbench: measure the broker as users see it, against one loopback TCP stream

Usage:
  kbench [flags]

Builds (or takes) the broker binary, starts it on a free port with a fresh
data directory and GODEBUG=gctrace=1, and from this process produces and
consumes with franz-go. Each case runs --count times on a fresh topic;
the medians are printed with their ratio to the loopback stream. Every
round also appends -n times the largest size in 1 MiB writes to a file in
the data directory's filesystem (no fsync, then removed): the produce
path's floor on this disk, printed with each produce's ratio to it.

Flags:
  --broker PATH      broker binary (default: go build ./cmd/broker into a temporary directory)
  -n N               records per throughput case (default 1000000)
  --count N          runs of every case; medians are reported (default 3). Latency
                     runs too repeat --count times per rate, and every
                     percentile reported is the median over the runs
  --sizes LIST       record value sizes in bytes (default 1024,100)
  --partitions LIST  partition counts (default 1,8)
  --latency-for D    how long each open-loop latency run sends (default 5s)
  --latency-rates LIST
                     latency mode: skip the throughput cases and run, for every
                     size and partition count, one open-loop latency run per
                     rate in LIST (records/s, e.g. 1000,10000,100000,half;
                     "half" is half of the median produce rate of --count
                     produce runs of -n records). Each record is due at a
                     scheduled time and its latency counts from then, so a
                     stall delays every record due during it (no coordinated
                     omission). The report breaks each record's trip into
                     stages seen at the client's sockets: scheduled -> handed
                     to kgo -> its Produce request written -> its Produce
                     response read, and -> the first Fetch response holding
                     it read -> the consumer's poll returning it. Each round
                     runs every target in turn and then the disk reference:
                     records of the case's size appended at the first
                     target's rate to a file in its data directory's
                     filesystem, with fdatasync back to back as a group
                     commit; it reports the time from a record's write to
                     the end of the fdatasync that covers it, the floor of
                     a durable acknowledgement on this disk
  --linger D         the latency producer's linger (default 10ms, kgo's default;
                     0 sends as soon as a request can be sent)
  --fetch-bytes N    the consumers' fetch.max.bytes (default 52428800, kgo's default)
  --fetch-partition-bytes N
                     the consumers' max.partition.fetch.bytes (default 1048576, kgo's default)
  --targets LIST     servers to measure, in this order (default broker):
                     broker   one broker process
                     broker-caching
                              one broker process with log.write.caching=true
                              (acks=all answered after the write, before
                              any fsync), to compare with broker in one run
                     cluster  three broker processes on this machine forming
                              one cluster (combined broker and controller
                              nodes, as cmd/broker/examples/cluster); topics
                              get 3 replicas and min.insync.replicas=2
                     kfake    franz-go's kfake, in a child process
                     Every target is started first and each round of
                     --count runs every case on every target in turn, so
                     the targets share the machine's load as it changes.
                     With broker and cluster, the report adds the ratio of
                     their produce rates
  --kfake            also measure kfake (adds it to --targets)
  --produce-only     measure produce and latency only: no consume runs and
                     no minimal producer (which, like the minimal consumer,
                     talks to one broker and so never runs on a cluster)
  --broker-property KEY=VALUE
                     add a line to the broker's server.properties (repeatable),
                     e.g. log.write.caching=true to measure caching mode
  --client-cpuprofile DIR
                     write a CPU profile of the kgo client for every kgo consume
                     run into DIR (SERVER-SIZE-PARTITIONS-RUN.pprof); each kgo
                     consume runs in a fresh kbench process of its own
  --help             print this help and exit

Example:
  go run ./cmd/kbench --count 3 --kfake
  go run ./cmd/kbench --latency-rates 1000,10000,100000,half --latency-for 3s \
      --sizes 100 --partitions 1 -n 300000 --count 1 --linger 0 --kfake
  go run ./cmd/kbench --targets broker,cluster --produce-only --sizes 1024 \
      -n 300000 --count 1 --linger 0
`

// options are the parsed flags.
type options struct {
	brokerPath string
	records    int
	count      int
	sizes      []int
	partitions []int32
	latencyFor time.Duration
	// latencyRates, when set, selects the latency mode.
	latencyRates []latencyRate
	// linger is the latency producer's ProducerLinger.
	linger time.Duration
	// targets are the servers measured, in order (--targets, --kfake).
	targets []string
	// produceOnly skips the consume runs and the minimal producer.
	produceOnly bool
	fetch       fetchSizes
	// profileDir, when set, receives a CPU profile of the kgo client
	// process of each kgo consume run.
	profileDir string
	// brokerProperties are KEY=VALUE lines added to the broker's
	// server.properties (--broker-property).
	brokerProperties []string
}

// latencyRate is one rate of --latency-rates: records per second, or half
// of the measured produce rate.
type latencyRate struct {
	perSecond float64
	half      bool
}

// parseRates parses --latency-rates.
func parseRates(text string) ([]latencyRate, error) {
	var rates []latencyRate
	for _, field := range strings.Split(text, ",") {
		field = strings.TrimSpace(field)
		if field == "half" {
			rates = append(rates, latencyRate{half: true})
			continue
		}
		value, err := strconv.ParseFloat(field, 64)
		if err != nil || !(value >= 1 && value <= 1e8) {
			return nil, fmt.Errorf("%q is neither a rate in [1, 1e8] records/s nor \"half\"", field)
		}
		rates = append(rates, latencyRate{perSecond: value})
	}
	return rates, nil
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == kfakeServeCommand {
		os.Exit(serveKfake(os.Args[2:], os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == consumeChildCommand {
		os.Exit(serveConsumeChild(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usageText)
		return exitOK
	case err != nil:
		fmt.Fprintf(stderr, "kbench: %v; run 'kbench --help' for usage\n", err)
		return exitArgument
	}
	ctx, stop := signalContext()
	defer stop()
	if err := bench(ctx, opts, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "kbench: %v\n", err)
		return exitFailure
	}
	return exitOK
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("kbench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	opts := options{}
	fs.StringVar(&opts.brokerPath, "broker", "", "")
	fs.IntVar(&opts.records, "n", 1_000_000, "")
	fs.IntVar(&opts.count, "count", 3, "")
	sizes := fs.String("sizes", "1024,100", "")
	partitions := fs.String("partitions", "1,8", "")
	fs.DurationVar(&opts.latencyFor, "latency-for", 5*time.Second, "")
	measureFake := fs.Bool("kfake", false, "")
	targets := fs.String("targets", targetBroker, "")
	fs.BoolVar(&opts.produceOnly, "produce-only", false, "")
	rates := fs.String("latency-rates", "", "")
	fs.DurationVar(&opts.linger, "linger", 10*time.Millisecond, "")
	fetchBytes := fs.Int("fetch-bytes", 50<<20, "")
	fetchPartitionBytes := fs.Int("fetch-partition-bytes", 1<<20, "")
	fs.StringVar(&opts.profileDir, "client-cpuprofile", "", "")
	fs.Func("broker-property", "", func(value string) error {
		key, _, ok := strings.Cut(value, "=")
		if !ok || key == "" || strings.ContainsAny(value, "\n\r") {
			return fmt.Errorf("--broker-property wants KEY=VALUE on one line, got %q", value)
		}
		opts.brokerProperties = append(opts.brokerProperties, value)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return opts, err
	}
	if fs.NArg() > 0 {
		return opts, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if opts.records < 1 || opts.records > 1_000_000_000 || opts.count < 1 || opts.count > 100 {
		return opts, fmt.Errorf("-n must be in [1, 1e9] and --count in [1, 100]")
	}
	if *fetchBytes < 1 || *fetchBytes > 1<<30 || *fetchPartitionBytes < 1 || *fetchPartitionBytes > 1<<30 {
		return opts, fmt.Errorf("--fetch-bytes and --fetch-partition-bytes must be in [1, 1 GiB]")
	}
	opts.fetch = fetchSizes{bytesMax: int32(*fetchBytes), partitionBytesMax: int32(*fetchPartitionBytes)}
	if opts.latencyFor <= 0 {
		return opts, fmt.Errorf("--latency-for must be positive")
	}
	if opts.linger < 0 || opts.linger > time.Minute {
		return opts, fmt.Errorf("--linger must be in [0, 1m]")
	}
	var err error
	if opts.targets, err = parseTargets(*targets, *measureFake); err != nil {
		return opts, fmt.Errorf("--targets: %w", err)
	}
	if *rates != "" {
		if opts.latencyRates, err = parseRates(*rates); err != nil {
			return opts, fmt.Errorf("--latency-rates: %w", err)
		}
	}
	if opts.sizes, err = parseList(*sizes, 1, 1<<20); err != nil {
		return opts, fmt.Errorf("--sizes: %w", err)
	}
	counts, err := parseList(*partitions, 1, 1000)
	if err != nil {
		return opts, fmt.Errorf("--partitions: %w", err)
	}
	for _, c := range counts {
		opts.partitions = append(opts.partitions, int32(c))
	}
	return opts, nil
}

// Targets kbench can measure.
const (
	targetBroker  = "broker"
	targetCluster = "cluster"
	targetKfake   = "kfake"
	// targetBrokerCaching is one broker with log.write.caching=true.
	targetBrokerCaching = "broker-caching"
)

// parseTargets parses --targets, with kfake added last for --kfake; each
// target counts once.
func parseTargets(text string, kfake bool) ([]string, error) {
	var targets []string
	fields := strings.Split(text, ",")
	if kfake {
		fields = append(fields, targetKfake)
	}
	for _, field := range fields {
		field = strings.TrimSpace(field)
		switch field {
		case targetBroker, targetBrokerCaching, targetCluster, targetKfake:
		default:
			return nil, fmt.Errorf("%q is not one of broker, broker-caching, cluster, kfake", field)
		}
		if !slices.Contains(targets, field) {
			targets = append(targets, field)
		}
	}
	return targets, nil
}

// parseList parses a comma-separated list of integers within [low, high].
func parseList(text string, low, high int) ([]int, error) {
	var values []int
	for _, field := range strings.Split(text, ",") {
		value, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || value < low || value > high {
			return nil, fmt.Errorf("%q is not an integer in [%d, %d]", field, low, high)
		}
		values = append(values, value)
	}
	return values, nil
}

// signalContext is cancelled by an interrupt or a termination signal.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
