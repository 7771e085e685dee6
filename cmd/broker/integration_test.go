package main

// These tests run the real broker binary, built once by TestMain, as users
// run it: a separate process on a free loopback port, with a temporary data
// directory and a server.properties file. Clients are unmodified franz-go
// (kgo, kadm) and kcat. Every wait is bounded by hangGuard, which only
// turns a hang into a failure; nothing here measures speed.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// hangGuard bounds every wait; it is never what a test asserts.
const hangGuard = 30 * time.Second

// brokerBinary is the path of the broker built by TestMain.
var brokerBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kafkasim-broker-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	brokerBinary = filepath.Join(dir, "broker")
	build := exec.Command("go", "build", "-o", brokerBinary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the broker:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	status := m.Run()
	os.RemoveAll(dir)
	os.Exit(status)
}

// brokerProcess is one running broker binary.
type brokerProcess struct {
	cmd     *exec.Cmd
	dataDir string
	addr    string
	log     *logBuffer
	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed
}

// logBuffer collects the broker's stderr and reports the listening address
// from the "broker started" line.
type logBuffer struct {
	mu      sync.Mutex
	text    bytes.Buffer
	scanned int
	addr    chan string
}

var startedLine = regexp.MustCompile(`msg="broker started" addrs=\[([^\] ]+)`)

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.text.Write(p)
	for {
		rest := l.text.Bytes()[l.scanned:]
		end := bytes.IndexByte(rest, '\n')
		if end < 0 {
			return len(p), nil
		}
		if m := startedLine.FindSubmatch(rest[:end]); m != nil {
			l.addr <- string(m[1]) // buffered: one start per process
		}
		l.scanned += end + 1
	}
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.text.String()
}

// writeConfig writes a server.properties for a broker on a free loopback
// port over dataDir, with extra lines appended (an extra line replaces the
// default line of the same key, since a key set twice is an error), and
// returns its path.
func writeConfig(t *testing.T, dataDir string, extra ...string) string {
	t.Helper()
	overridden := map[string]bool{}
	for _, line := range extra {
		key, _, _ := strings.Cut(line, "=")
		overridden[key] = true
	}
	var lines []string
	for _, line := range []string{
		"listeners=PLAINTEXT://127.0.0.1:0",
		"log.dirs=" + dataDir,
		"group.initial.rebalance.delay.ms=0",
	} {
		if key, _, _ := strings.Cut(line, "="); !overridden[key] {
			lines = append(lines, line)
		}
	}
	lines = append(lines, extra...)
	path := filepath.Join(t.TempDir(), "server.properties")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startBroker starts the binary with a config over dataDir and waits for
// its "broker started" line. The process is killed when the test ends if
// it is still running.
func startBroker(t *testing.T, dataDir string, extra ...string) *brokerProcess {
	t.Helper()
	return startBrokerWith(t, dataDir, writeConfig(t, dataDir, extra...))
}

// startBrokerWith starts the binary with the config file at configPath,
// whose log.dirs is dataDir, as startBroker does.
func startBrokerWith(t *testing.T, dataDir, configPath string) *brokerProcess {
	t.Helper()
	p := &brokerProcess{dataDir: dataDir, log: &logBuffer{addr: make(chan string, 1)}, done: make(chan struct{})}
	p.cmd = exec.Command(brokerBinary, "--config", configPath)
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("broker log:\n%s", p.log.String())
		}
	})
	select {
	case p.addr = <-p.log.addr:
	case <-p.done:
		t.Fatalf("broker exited before starting: %v\n%s", p.waitErr, p.log.String())
	case <-time.After(hangGuard):
		t.Fatalf("broker did not log its start within the hang guard:\n%s", p.log.String())
	}
	return p
}

// signal sends sig and waits for the process to exit, returning its exit
// status (-1 when killed by a signal).
func (p *brokerProcess) signal(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(hangGuard):
		t.Fatalf("broker did not exit within the hang guard after %v", sig)
	}
	return p.cmd.ProcessState.ExitCode()
}

// runBroker runs the binary with args to completion and returns its exit
// status and stderr (for the configuration error cases).
func runBroker(t *testing.T, args ...string) (int, string) {
	t.Helper()
	status, _, stderr := runBrokerOutput(t, args...)
	return status, stderr
}

// runBrokerOutput runs the binary with args to completion and returns its
// exit status, stdout and stderr.
func runBrokerOutput(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, brokerBinary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("broker %v did not exit within the hang guard; stderr:\n%s", args, stderr.String())
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RetryTimeout(hangGuard), kgo.FetchMaxWait(500 * time.Millisecond)}, opts...)
	client, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return client
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	t.Cleanup(cancel)
	return ctx
}

// createTopic creates a topic with the given partition count.
func createTopic(t *testing.T, addr, topic string, partitions int32) {
	t.Helper()
	admin := kadm.NewClient(newClient(t, addr))
	if _, err := admin.CreateTopic(testContext(t), partitions, 1, nil, topic); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

// readAll reads every partition of topic from its start to the end offset
// listed when it is called, without a group.
func readAll(t *testing.T, addr, topic string) []*kgo.Record {
	t.Helper()
	ctx := testContext(t)
	admin := kadm.NewClient(newClient(t, addr))
	ends, err := admin.ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("list end offsets of %s: %v %v", topic, err, ends.Error())
	}
	remaining := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
		}
	})
	client := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()))
	var got []*kgo.Record
	for len(remaining) > 0 {
		fetches := client.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d records of %s before the hang guard; partitions left: %v", len(got), topic, remaining)
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			t.Fatalf("fetch %s-%d: %v", topic, partition, err)
		})
		for _, r := range fetches.Records() {
			got = append(got, r)
			if r.Offset+1 >= remaining[r.Partition] {
				delete(remaining, r.Partition)
			}
		}
	}
	return got
}

// checkDense checks that records read from the start of each partition
// have offsets 0, 1, 2, ... per partition and distinct values.
func checkDense(t *testing.T, records []*kgo.Record) {
	t.Helper()
	next := map[int32]int64{}
	seen := map[string]bool{}
	for _, r := range records {
		if r.Offset != next[r.Partition] {
			t.Fatalf("partition %d: offset %d where %d was expected", r.Partition, r.Offset, next[r.Partition])
		}
		next[r.Partition]++
		if seen[string(r.Value)] {
			t.Fatalf("value %q read twice", r.Value)
		}
		seen[string(r.Value)] = true
	}
}

// missingGroupAPIs asks the broker's ApiVersions which consumer group APIs
// it does not implement; group tests skip only on that answer.
func missingGroupAPIs(t *testing.T, addr string) []string {
	t.Helper()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(testContext(t), newClient(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	supported := map[int16]bool{}
	for _, k := range resp.ApiKeys {
		supported[k.ApiKey] = true
	}
	var missing []string
	for _, api := range []struct {
		key  int16
		name string
	}{{8, "OffsetCommit"}, {9, "OffsetFetch"}, {10, "FindCoordinator"}, {11, "JoinGroup"},
		{12, "Heartbeat"}, {13, "LeaveGroup"}, {14, "SyncGroup"}, {15, "DescribeGroups"}} {
		if !supported[api.key] {
			missing = append(missing, api.name)
		}
	}
	return missing
}

// TestKgoIdempotentEveryCodec produces keyed records across four partitions
// with franz-go's idempotent producer, once per compression codec, and
// checks that a consumer reads back exactly those records: every value
// once, offsets dense per partition, keys intact, and each key in a single
// partition.
func TestKgoIdempotentEveryCodec(t *testing.T) {
	b := startBroker(t, t.TempDir(), "num.partitions=4")
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	const perCodec = 300
	want := map[string]string{} // value -> key
	for _, name := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		producer := newClient(t, b.addr, kgo.DefaultProduceTopic("codecs"), kgo.AllowAutoTopicCreation(),
			kgo.ProducerBatchCompression(codecs[name]))
		records := make([]*kgo.Record, perCodec)
		for i := range records {
			key, value := fmt.Sprintf("key-%d", i%11), fmt.Sprintf("%s-%d", name, i)
			records[i] = &kgo.Record{Key: []byte(key), Value: []byte(value)}
			want[value] = key
		}
		if err := producer.ProduceSync(testContext(t), records...).FirstErr(); err != nil {
			t.Fatalf("produce with %s: %v", name, err)
		}
		producer.Close()
	}
	got := readAll(t, b.addr, "codecs")
	checkDense(t, got)
	partitionOf := map[string]int32{}
	for _, r := range got {
		if want[string(r.Value)] != string(r.Key) {
			t.Fatalf("record %q has key %q, want %q", r.Value, r.Key, want[string(r.Value)])
		}
		if p, ok := partitionOf[string(r.Key)]; ok && p != r.Partition {
			t.Fatalf("key %s in partitions %d and %d", r.Key, p, r.Partition)
		}
		partitionOf[string(r.Key)] = r.Partition
	}
	if len(got) != len(want) || len(partitionOf) < 2 {
		t.Fatalf("read %d records over %d keys' partitions, produced %d", len(got), len(partitionOf), len(want))
	}
}
