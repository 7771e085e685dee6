// Command broker runs one kafkasim broker on real TCP and files.
//
// With no arguments it serves a single node on 127.0.0.1:9092 with its data
// in ./data. --config FILE reads a server.properties file with Kafka's
// setting names (see docs/configuration.md). SIGTERM or SIGINT shuts down
// cleanly (flushing every partition and writing checkpoints); after a crash
// or kill -9, the next start recovers from what is on disk.
package main

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/kafkasim/kafkasim/broker"
	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/disk"
	knet "github.com/kafkasim/kafkasim/net"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "broker:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	flags := flag.NewFlagSet("broker", flag.ContinueOnError)
	configPath := flags.String("config", "", "server.properties file (Kafka setting names); embedded defaults when empty")
	logLevel := flags.String("log-level", "info", "debug, info, warn or error")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (did you mean --config %s?)", flags.Arg(0), flags.Arg(0))
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	return serve(cfg, log)
}

func loadConfig(path string) (broker.Config, error) {
	cfg := broker.DefaultConfig()
	if path == "" {
		return cfg, nil
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("--config: %w", err)
	}
	cfg, err = broker.ParseProperties(cfg, string(text))
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// serve runs the node until a signal or a fatal error.
func serve(cfg broker.Config, log *slog.Logger) error {
	fsys, err := disk.New(cfg.LogDir)
	if err != nil {
		return fmt.Errorf("log.dirs %s: %w", cfg.LogDir, err)
	}
	dataDir := cfg.LogDir
	cfg.LogDir = "." // the node's file system is rooted at the data directory

	loop := knet.NewLoop()
	tcp, err := knet.NewTCP(loop, knet.TCPOptions{FrameBytesMax: int(cfg.RequestBytesMax)})
	if err != nil {
		return err
	}
	defer tcp.Close()
	env := core.Env{Clock: knet.NewClock(loop), Rand: core.NewRand(osSeed()), FS: fsys, Net: tcp, Log: log}

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
			runErr = fmt.Errorf("halted: %w", err)
			loop.Stop()
		}
		if err := node.Start(); err != nil {
			node.Stop()
			runErr = err
			loop.Stop()
			return
		}
		log.Info("broker started", slog.Any("addrs", node.Addrs()), slog.String("log.dirs", dataDir))
		stopOnSignal(loop, node, log)
	})
	loop.Run()
	<-started
	return runErr
}

// stopOnSignal shuts the node down cleanly on SIGTERM or SIGINT.
func stopOnSignal(loop *knet.Loop, node *broker.Node, log *slog.Logger) {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		sig := <-signals
		loop.Post(func() {
			log.Info("shutting down", slog.String("signal", sig.String()))
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
