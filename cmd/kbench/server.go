package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	stdnet "net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kfakeServeCommand is the hidden first argument that makes kbench serve
// a kfake cluster instead of measuring, so that kfake, like the broker,
// runs in a process of its own.
const kfakeServeCommand = "kfake-serve"

// readyTimeout bounds how long a started server may take to answer.
const readyTimeout = 30 * time.Second

// clockTicksPerSecond is the unit of the CPU times in /proc/PID/stat
// (USER_HZ, 100 on Linux).
const clockTicksPerSecond = 100

// server is a process under test: its address, and the garbage
// collection CPU its gctrace lines reported so far.
type server struct {
	name string
	addr string
	// metricsAddr is the broker's /metrics listener (empty for kfake).
	metricsAddr string
	cmd         *exec.Cmd
	dir         string
	gcCPUus     atomic.Int64 // microseconds of CPU in GC cycles
	gcDone      chan struct{}
}

// startBroker builds the broker unless path names it, and starts it on a
// free port with a fresh data directory.
func startBroker(ctx context.Context, path string, extra []string) (*server, error) {
	dir, err := os.MkdirTemp("", "kbench-")
	if err != nil {
		return nil, err
	}
	if path == "" {
		path = filepath.Join(dir, "broker")
		build := exec.CommandContext(ctx, "go", "build", "-o", path, "github.com/kafkasim/kafkasim/cmd/broker")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("build the broker: %w", err)
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	config := filepath.Join(dir, "server.properties")
	properties := fmt.Sprintf("node.id=1\nlisteners=PLAINTEXT://%s\nlog.dirs=%s\nauto.create.topics.enable=true\n"+
		"group.initial.rebalance.delay.ms=0\n", addr, filepath.Join(dir, "data"))
	for _, property := range extra {
		properties += property + "\n"
	}
	if err := os.WriteFile(config, []byte(properties), 0o644); err != nil {
		return nil, err
	}
	metricsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", metricsPort)
	cmd := exec.Command(path, "--config", config, "--log-level", "warn", "--metrics-listener", metricsAddr)
	s, err := startServer(ctx, "broker", addr, dir, cmd)
	if err != nil {
		return nil, err
	}
	s.metricsAddr = metricsAddr
	return s, nil
}

// startKfake starts a one-broker kfake cluster in a child kbench process.
func startKfake(ctx context.Context) (*server, error) {
	dir, err := os.MkdirTemp("", "kbench-kfake-")
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, kfakeServeCommand, strconv.Itoa(port))
	return startServer(ctx, "kfake", fmt.Sprintf("127.0.0.1:%d", port), dir, cmd)
}

func startServer(ctx context.Context, name, addr, dir string, cmd *exec.Cmd) (*server, error) {
	cmd.Env = append(os.Environ(), "GODEBUG=gctrace=1")
	// The server must not outlive kbench, even when kbench is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &server{name: name, addr: addr, cmd: cmd, dir: dir, gcDone: make(chan struct{})}
	go s.readGCTrace(stderr)
	if err := waitReady(ctx, addr); err != nil {
		s.stop()
		return nil, fmt.Errorf("%s did not start: %w", name, err)
	}
	return s, nil
}

// readGCTrace adds up the CPU of every GC cycle the server reports, and
// passes its other lines on.
func (s *server) readGCTrace(r io.Reader) {
	defer close(s.gcDone)
	scanner := bufio.NewScanner(r)
	for scanner.Scan() {
		line := scanner.Text()
		if cpu, ok := gcCycleCPU(line); ok {
			s.gcCPUus.Add(cpu.Microseconds())
			continue
		}
		fmt.Fprintf(os.Stderr, "%s: %s\n", s.name, line)
	}
}

// gcCycleCPU parses one GODEBUG=gctrace=1 line ("gc 7 @1.2s 3%: 0.01+1.2+0.02
// ms clock, 0.03+0.4/1.1/2.0+0.05 ms cpu, ...") and returns the CPU the
// cycle used: stop-the-world sweep termination, assist, background and
// idle marking, and mark termination.
func gcCycleCPU(line string) (time.Duration, bool) {
	if !strings.HasPrefix(line, "gc ") {
		return 0, false
	}
	_, rest, ok := strings.Cut(line, " ms clock, ")
	if !ok {
		return 0, false
	}
	fields, _, ok := strings.Cut(rest, " ms cpu")
	if !ok {
		return 0, false
	}
	total := 0.0
	for _, field := range strings.FieldsFunc(fields, func(r rune) bool { return r == '+' || r == '/' }) {
		ms, err := strconv.ParseFloat(field, 64)
		if err != nil {
			return 0, false
		}
		total += ms
	}
	return time.Duration(total * float64(time.Millisecond)), true
}

// cpu returns the CPU time (user and system) the server used so far.
func (s *server) cpu() (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	return processCPU(string(stat))
}

// processCPU parses utime and stime (fields 14 and 15) of /proc/PID/stat;
// the command name in field 2 may hold spaces, so fields count from its
// closing parenthesis.
func processCPU(stat string) (time.Duration, error) {
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, errors.New("unreadable /proc stat")
	}
	fields := strings.Fields(stat[end+1:])
	if len(fields) < 13 {
		return 0, errors.New("short /proc stat")
	}
	var ticks int64
	for _, field := range fields[11:13] {
		n, err := strconv.ParseInt(field, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicksPerSecond, nil
}

// stop ends the server and removes its files.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	exited := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-exited
	}
	_ = os.RemoveAll(s.dir)
}

func freePort() (int, error) {
	ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*stdnet.TCPAddr).Port, nil
}

// waitReady waits until a Kafka client can talk to addr.
func waitReady(ctx context.Context, addr string) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		client, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err == nil {
			pingCtx, cancel := context.WithTimeout(ctx, time.Second)
			err = client.Ping(pingCtx)
			cancel()
			client.Close()
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// serveKfake is the child process of startKfake: a one-broker kfake
// cluster on the given port, until interrupted.
func serveKfake(args []string, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "kbench: kfake-serve takes a port")
		return exitArgument
	}
	port, err := strconv.Atoi(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "kbench: kfake-serve: bad port %q\n", args[0])
		return exitArgument
	}
	cluster, err := kfake.NewCluster(kfake.Ports(port), kfake.NumBrokers(1))
	if err != nil {
		fmt.Fprintf(stderr, "kbench: kfake: %v\n", err)
		return exitFailure
	}
	defer cluster.Close()
	ctx, stop := signalContext()
	defer stop()
	<-ctx.Done()
	return exitOK
}
