package main

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker"
	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/disk"
	knet "github.com/kafkasim/kafkasim/net"
)

// hangGuard bounds every wait in these tests; it only turns a hang into a
// failure and is never what a test measures.
const hangGuard = 30 * time.Second

// runningNode is a broker on the production runtime (real TCP on loopback,
// real files in a temporary directory), as cmd/broker runs it; the pattern
// is broker/kgo_test.go's.
type runningNode struct {
	loop *knet.Loop
	tcp  *knet.TCP
	node *broker.Node
	addr string
	done chan struct{}
}

// startNode starts a node on 127.0.0.1 port 0 over a temporary directory
// and stops it when the test ends.
func startNode(t *testing.T, configure func(*broker.Config)) *runningNode {
	t.Helper()
	return startNodeAt(t, nodeSetup{dir: t.TempDir(), listener: "127.0.0.1:0", configure: configure})
}

// nodeSetup is where and how startNodeAt starts a node: a restart passes
// the same directory and the address the first start bound.
type nodeSetup struct {
	dir       string
	listener  string
	configure func(*broker.Config)
	wrapFS    func(core.FS) core.FS // fault injection; nil for none
	// seed seeds the node's randomness; 0 means 1. Nodes of one cluster
	// need different seeds, or their election timeouts would all be
	// equal and their elections could split the vote again and again.
	seed uint64
}

// startNodeAt starts a node as setup says and stops it when the test ends.
func startNodeAt(t *testing.T, setup nodeSetup) *runningNode {
	t.Helper()
	var fsys core.FS
	real, err := disk.New(setup.dir)
	if err != nil {
		t.Fatal(err)
	}
	fsys = real
	if setup.wrapFS != nil {
		fsys = setup.wrapFS(fsys)
	}
	cfg := broker.DefaultConfig()
	cfg.Listeners = []string{setup.listener}
	cfg.LogDir = "."
	cfg.GroupInitialRebalanceDelayMs = 0
	if setup.configure != nil {
		setup.configure(&cfg)
	}
	r := &runningNode{loop: knet.NewLoop(), done: make(chan struct{})}
	r.tcp, err = knet.NewTCP(r.loop, knet.TCPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	seed := setup.seed
	if seed == 0 {
		seed = 1
	}
	env := core.Env{Clock: knet.NewClock(r.loop), Rand: core.NewRand(seed), FS: fsys, Net: r.tcp, Log: log}
	started := make(chan error, 1)
	r.loop.Post(func() {
		r.node, err = broker.New(env, cfg)
		if err == nil {
			err = r.node.Start()
		}
		if err == nil {
			r.addr = r.node.Addrs()[0]
		}
		started <- err
	})
	go func() {
		r.loop.Run()
		close(r.done)
	}()
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.stop)
	return r
}

// stop shuts the node down cleanly, as SIGTERM does.
func (r *runningNode) stop() {
	select {
	case <-r.done:
		return
	default:
	}
	r.loop.Post(func() {
		r.node.Stop()
		r.loop.Stop()
	})
	<-r.done
	r.tcp.Close()
}

// crash stops the node as kill -9 would: its loop stops and its sockets
// close with no clean shutdown (no controlled shutdown, no flush).
func (r *runningNode) crash() {
	r.loop.Post(r.loop.Stop)
	<-r.done
	r.tcp.Close()
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// result is one kctl run's exit status and output.
type result struct {
	status int
	stdout string
	stderr string
}

// kctl runs one command line in-process against addr with stdin as input.
// A hang guard cancels a command that does not finish.
func kctl(t *testing.T, addr, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	var stdout, stderr bytes.Buffer
	full := append([]string{"-b", addr}, args...)
	status := runContext(ctx, full, strings.NewReader(stdin), &stdout, &stderr)
	if ctx.Err() != nil {
		t.Fatalf("kctl %s hit the hang guard; stdout %q stderr %q", strings.Join(args, " "), stdout.String(), stderr.String())
	}
	return result{status: status, stdout: stdout.String(), stderr: stderr.String()}
}

// mustKctl is kctl for a command that must succeed.
func mustKctl(t *testing.T, addr, stdin string, args ...string) result {
	t.Helper()
	r := kctl(t, addr, stdin, args...)
	if r.status != exitOK {
		t.Fatalf("kctl %s: exit status %d, stderr %q", strings.Join(args, " "), r.status, r.stderr)
	}
	return r
}

// groupAPIs are the Kafka APIs consumer groups need, by key.
var groupAPIs = map[int16]string{
	8: "OffsetCommit", 9: "OffsetFetch", 11: "JoinGroup", 12: "Heartbeat", 13: "LeaveGroup",
	14: "SyncGroup", 15: "DescribeGroups", 16: "ListGroups", 42: "DeleteGroups",
}

// missingGroupAPIs asks the broker's ApiVersions which group APIs it does
// not implement yet, sorted by key; group tests skip only on that answer.
func missingGroupAPIs(t *testing.T, addr string) []string {
	t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	supported := map[int16]bool{}
	for _, k := range resp.ApiKeys {
		supported[k.ApiKey] = true
	}
	var missing []string
	for key := int16(0); key < 100; key++ {
		if name, ok := groupAPIs[key]; ok && !supported[key] {
			missing = append(missing, name)
		}
	}
	return missing
}

// update rewrites golden files instead of comparing with them.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// checkGolden compares got with testdata/name, or writes it there with
// -update. A missing golden file fails: a first run must be reviewed.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Fatalf("output differs from %s (go test -update rewrites it):\n--- got\n%s--- want\n%s", path, got, want)
	}
}
