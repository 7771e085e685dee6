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

// stopTimeout bounds how long a stopped server may take to exit before
// it is killed.
const stopTimeout = 10 * time.Second

// clockTicksPerSecond is the unit of the CPU times in /proc/PID/stat
// (USER_HZ, 100 on Linux).
const clockTicksPerSecond = 100

// server is a target under test: its process (the first node of a
// cluster), its address, and the garbage collection CPU its gctrace lines
// reported so far.
type server struct {
	name string
	addr string
	// metricsAddr is the broker's /metrics listener (empty for kfake).
	metricsAddr string
	cmd         *exec.Cmd
	dir         string
	gcCPUus     atomic.Int64 // microseconds of CPU in GC cycles
	gcDone      chan struct{}
	// peers are a cluster's other nodes, each a process of its own;
	// CPU, GC and metrics add up over the server and its peers.
	peers []*server
	// replicas is the replication factor of the topics kbench creates,
	// and topicConfigs their settings (for a cluster: 3 replicas and
	// min.insync.replicas=2).
	replicas     int16
	topicConfigs map[string]*string
}

// nodes are the processes of the target: the server and its peers.
func (s *server) nodes() []*server { return append([]*server{s}, s.peers...) }

// gcCPU is the CPU every node's GC cycles reported so far.
func (s *server) gcCPU() time.Duration {
	var total time.Duration
	for _, n := range s.nodes() {
		total += time.Duration(n.gcCPUus.Load()) * time.Microsecond
	}
	return total
}

// startBroker builds the broker unless path names it, and starts it on a
// free port with a fresh data directory, as the target called name.
func startBroker(ctx context.Context, name, path string, extra []string) (*server, error) {
	dir, err := os.MkdirTemp("", "kbench-")
	if err != nil {
		return nil, err
	}
	if path, err = brokerBinary(ctx, dir, path); err != nil {
		return nil, err
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
	s, err := startServer(ctx, name, addr, dir, cmd)
	if err != nil {
		return nil, err
	}
	s.metricsAddr = metricsAddr
	return s, nil
}

// brokerBinary returns path, or when it is empty builds the broker into
// dir and returns where.
func brokerBinary(ctx context.Context, dir, path string) (string, error) {
	if path != "" {
		return path, nil
	}
	path = filepath.Join(dir, "broker")
	build := exec.CommandContext(ctx, "go", "build", "-o", path, "github.com/kafkasim/kafkasim/cmd/broker")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build the broker: %w", err)
	}
	return path, nil
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
	s, err := launch(name, addr, dir, cmd)
	if err != nil {
		return nil, err
	}
	if err := waitReady(ctx, addr); err != nil {
		s.stop()
		return nil, fmt.Errorf("%s did not start: %w", name, err)
	}
	return s, nil
}

// launch starts cmd with GC tracing and follows its trace, without
// waiting for it to serve: a cluster's nodes serve only once a quorum of
// them runs.
func launch(name, addr, dir string, cmd *exec.Cmd) (*server, error) {
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
	s := &server{name: name, addr: addr, cmd: cmd, dir: dir, gcDone: make(chan struct{}), replicas: 1}
	go s.readGCTrace(stderr)
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

// cpu returns the CPU time (user and system) the server's nodes used so
// far.
func (s *server) cpu() (time.Duration, error) {
	var total time.Duration
	for _, n := range s.nodes() {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n.cmd.Process.Pid))
		if err != nil {
			return 0, err
		}
		used, err := processCPU(string(stat))
		if err != nil {
			return 0, err
		}
		total += used
	}
	return total, nil
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

// stop ends the server and its peers, and removes their files. Every
// node is told to stop before any is waited for, so that a cluster's
// nodes shut down together rather than each waiting for a quorum that
// the ones stopped before it took away.
func (s *server) stop() {
	nodes := s.nodes()
	exited := make([]chan struct{}, len(nodes))
	for i, n := range nodes {
		_ = n.cmd.Process.Signal(os.Interrupt)
		exited[i] = make(chan struct{})
		go func() { _ = n.cmd.Wait(); close(exited[i]) }()
	}
	deadline := time.After(stopTimeout)
	for i, n := range nodes {
		select {
		case <-exited[i]:
		case <-deadline:
			_ = n.cmd.Process.Kill()
			<-exited[i]
		}
	}
	for _, n := range nodes {
		_ = os.RemoveAll(n.dir)
	}
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
