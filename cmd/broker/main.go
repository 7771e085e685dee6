// Command broker runs one kafkasim broker on real TCP and files.
//
// With no arguments it serves a single node on 127.0.0.1:9092 with its data
// in ./data. --config FILE reads a server.properties file with Kafka's
// setting names (see docs/configuration.md). SIGTERM or SIGINT shuts down
// cleanly (flushing every partition and writing checkpoints); after a crash
// or kill -9, the next start recovers from what is on disk.
//
// Startup runs in an order that keeps a mistaken second start harmless:
// lock the data directory (one owner at a time), bind every listener (so a
// port in use fails before anything is read), recover the data, and only
// then serve; connections that arrive during recovery wait in the kernel's
// accept backlog.
package main

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/kafkasim/kafkasim/broker"
	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/disk"
	knet "github.com/kafkasim/kafkasim/net"
)

// Exit statuses.
const (
	exitOK       = 0
	exitFailure  = 1 // bad configuration, a locked directory, a port in use, a fatal error
	exitArgument = 2 // bad command-line arguments
)

// usageText is what --help prints (cmd/broker/testdata/help.golden).
const usageText = `broker runs one kafkasim broker: a Kafka-compatible log broker on TCP and
local files.

Usage:
  broker [--config FILE] [--log-level LEVEL] [--metrics-listener ADDR]

With no --config it serves one node on 127.0.0.1:9092 and keeps its data in
./data. FILE is a server.properties file with Kafka's setting names; Kafka
settings that have no effect here are accepted with one warning, and every
mistake in the file is reported at once (docs/configuration.md).

One broker owns a data directory at a time: a second broker on the same
log.dirs exits at once, naming the one that holds it. SIGTERM or Ctrl-C shuts
down cleanly; after kill -9 or a power loss the next start recovers from the
data directory.

Prometheus metrics are served at http://127.0.0.1:9644/metrics and a health
probe at /health (200 while the broker serves, 503 otherwise); see
docs/observability.md.

Flags:
  --config FILE            server.properties file (default: the embedded defaults)
  --log-level LEVEL        debug, info, warn or error (default: info)
  --metrics-listener ADDR  host:port of /metrics and /health, overriding
                           metrics.listener (default 127.0.0.1:9644; "" disables)
  --help                   print this help and exit

Examples:
  broker                                    # 127.0.0.1:9092, data in ./data
  broker --config server.properties         # Kafka's own quickstart file works
  broker --config cmd/broker/examples/server.properties --log-level debug
  broker --metrics-listener 0.0.0.0:9644    # let a remote Prometheus scrape
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command and returns its exit status. Errors are printed as
// one "broker: ..." line (a configuration file with several mistakes lists
// them on the lines below).
func run(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("broker", flag.ContinueOnError)
	flags.SetOutput(io.Discard) // errors are printed below, once
	configPath := flags.String("config", "", "")
	logLevel := flags.String("log-level", "info", "")
	metricsListener := flags.String("metrics-listener", "", "")
	err := flags.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usageText)
		return exitOK
	case err != nil:
		return argumentError(stderr, describeFlagError(err))
	case flags.NArg() > 0:
		return argumentError(stderr, fmt.Sprintf("unexpected argument %q (did you mean --config %s?)", flags.Arg(0), flags.Arg(0)))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return argumentError(stderr, fmt.Sprintf("--log-level %q is not debug, info, warn or error", *logLevel))
	}
	cfg, warnings, err := loadConfig(*configPath)
	if err != nil {
		return failure(stderr, err)
	}
	metricsFlagSet := false
	flags.Visit(func(f *flag.Flag) { metricsFlagSet = metricsFlagSet || f.Name == "metrics-listener" })
	if metricsFlagSet {
		cfg.MetricsListener = *metricsListener
	}
	// Only the embedded default address may be skipped when it is in use;
	// an address the operator chose must be served or the start fails.
	metricsIsDefault := !metricsFlagSet && cfg.MetricsListener == broker.MetricsListenerDefault
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	for _, warning := range warnings {
		log.Warn(warning)
	}
	dieWithGoRun()
	if err := serve(cfg, metricsIsDefault, log); err != nil {
		return failure(stderr, err)
	}
	return exitOK
}

// argumentError prints a command-line mistake and where to find the usage.
func argumentError(stderr io.Writer, problem string) int {
	fmt.Fprintf(stderr, "broker: %s; run 'broker --help' for usage\n", problem)
	return exitArgument
}

// failure prints err as one "broker: " line. Errors from the broker package
// already start with "broker: "; the prefix is not repeated.
func failure(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "broker: %s\n", strings.TrimPrefix(err.Error(), "broker: "))
	return exitFailure
}

// describeFlagError rewords the flag package's errors in the terms of this
// command's --flag spelling.
func describeFlagError(err error) string {
	text := err.Error()
	if name, ok := strings.CutPrefix(text, "flag provided but not defined: -"); ok {
		return "unknown flag --" + strings.TrimPrefix(name, "-")
	}
	if name, ok := strings.CutPrefix(text, "flag needs an argument: -"); ok {
		return "flag --" + strings.TrimPrefix(name, "-") + " needs a value"
	}
	return text
}

// loadConfig returns the embedded defaults, or the file at path over them,
// with the warnings the file deserves.
func loadConfig(path string) (broker.Config, []string, error) {
	cfg := broker.DefaultConfig()
	if path == "" {
		return cfg, nil, nil
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return cfg, nil, fmt.Errorf("--config: %w", err)
	}
	cfg, warnings, err := broker.ParseProperties(cfg, string(text))
	if err != nil {
		return cfg, nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, warnings, nil
}

// serve runs the node until a signal or a fatal error: lock the data
// directory, bind the listeners (the metrics listener too), recover, serve.
func serve(cfg broker.Config, metricsIsDefault bool, log *slog.Logger) error {
	// Signals are caught from the start: one that arrives while the data
	// directory recovers is acted on as soon as the node runs.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)
	dataDir := cfg.LogDir
	lock, err := disk.LockDir(dataDir)
	if err != nil {
		if errors.Is(err, disk.ErrLocked) {
			return fmt.Errorf("%w; stop it first, or change log.dirs= in the config", err)
		}
		return fmt.Errorf("log.dirs %s: %w", dataDir, err)
	}
	defer lock.Release()

	loop := knet.NewLoop()
	tcp, err := knet.NewTCP(loop, knet.TCPOptions{FrameBytesMax: int(cfg.RequestBytesMax)})
	if err != nil {
		return err
	}
	defer tcp.Close()
	bound, err := bindListeners(tcp, cfg.Listeners)
	if err != nil {
		return err
	}
	if err := lock.SetHolder(fmt.Sprintf("pid %d, listeners %s", os.Getpid(), strings.Join(bound, " "))); err != nil {
		return err
	}
	metrics, err := listenMetrics(cfg.MetricsListener, metricsIsDefault, loop, log)
	if err != nil {
		return err
	}
	defer metrics.close()

	fsys, err := disk.New(dataDir)
	if err != nil {
		return fmt.Errorf("log.dirs %s: %w", dataDir, err)
	}
	cfg.LogDir = "." // the node's file system is rooted at the data directory
	// Group-commit fsyncs run on a few workers off the event loop, so
	// syncs of different partitions overlap and a slow one stalls nobody.
	io := knet.NewIOPool(loop, ioWorkers)
	defer io.Close()
	env := core.Env{Clock: knet.NewClock(loop), Rand: core.NewRand(osSeed()), FS: fsys, Net: tcp, IO: io, Log: log}
	return runNode(loop, env, cfg, dataDir, log, signals, metrics)
}

// ioWorkers is the number of goroutines that run fsyncs: enough for a
// device's queue to see parallel syncs of many partitions (with 4, acks=all
// over 64 partitions ran at 0.3 of acks=1; with 16, at 0.9).
const ioWorkers = 16

// bindListeners binds every listener before any data is read, so that a
// port in use stops the broker while the data directory is untouched. The
// node's Start adopts the bound sockets.
func bindListeners(tcp *knet.TCP, addrs []string) ([]string, error) {
	bound := make([]string, 0, len(addrs))
	for _, addr := range addrs {
		actual, err := tcp.Bind(addr)
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%w (is another broker running? change listeners= in the config)", err)
		}
		if err != nil {
			return nil, err
		}
		bound = append(bound, actual)
	}
	return bound, nil
}

// runNode recovers the node on the loop, starts it and runs the loop until
// the node stops.
func runNode(loop *knet.Loop, env core.Env, cfg broker.Config, dataDir string, log *slog.Logger, signals <-chan os.Signal, metrics *metricsServer) error {
	var runErr error
	started := make(chan struct{})
	loop.Post(func() {
		defer close(started)
		node, err := broker.New(env, cfg)
		if err != nil {
			runErr = err
			loop.Stop()
			return
		}
		node.OnHalt = func(err error) {
			metrics.stopped(fmt.Sprintf("halted: %v", err))
			runErr = fmt.Errorf("halted: %w", err)
			loop.Stop()
		}
		if err := node.Start(); err != nil {
			node.Stop()
			runErr = err
			loop.Stop()
			return
		}
		metrics.serving(node)
		log.Info("broker started", slog.Any("addrs", node.Addrs()), slog.String("log.dirs", dataDir))
		stopOnSignal(loop, node, log, signals, metrics)
	})
	loop.Run()
	<-started
	return runErr
}

// stopOnSignal shuts the node down cleanly on the first signal on signals
// (SIGTERM or SIGINT, registered when serve began, so that a signal during
// recovery or in the instant after the start is not lost to the default
// action, which would kill the process without a clean shutdown).
func stopOnSignal(loop *knet.Loop, node *broker.Node, log *slog.Logger, signals <-chan os.Signal, metrics *metricsServer) {
	go func() {
		sig := <-signals
		metrics.stopped("shutting down")
		loop.Post(func() {
			log.Info("shutting down", slog.String("signal", sig.String()))
			node.Shutdown(func(err error) {
				if err != nil {
					log.Error("clean shutdown failed", slog.Any("err", err))
				}
				loop.Stop()
			})
		})
		// A second signal stops at once, skipping the controlled
		// shutdown's wait for the controller.
		sig = <-signals
		loop.Post(func() {
			log.Info("stopping at once", slog.String("signal", sig.String()))
			if err := node.Stop(); err != nil {
				log.Error("clean shutdown failed", slog.Any("err", err))
			}
			loop.Stop()
		})
	}()
}

// osSeed draws the production random seed from the operating system.
func osSeed() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(errors.New("cannot read random seed: " + err.Error()))
	}
	return binary.LittleEndian.Uint64(b[:])
}
