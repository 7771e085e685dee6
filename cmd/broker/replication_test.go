package main

// These tests run replicated partitions on real broker processes, made
// from the shipped examples/cluster files as cluster_test.go makes them,
// under unmodified clients: franz-go (kgo, kadm), kcat and kctl. Every wait
// is a liveness guard with a generous bound and a message that says what
// did not happen; none asserts how fast anything happened.

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// replicationGuard bounds the waits of the replication test that include a
// fencing, a leader election or a restarted broker catching up; like
// hangGuard it only turns a hang into a failure.
const replicationGuard = 60 * time.Second

// produceInterval paces the test's producer: a steady trickle that keeps
// every partition busy through the failover without loading the shared
// machine.
const produceInterval = 2 * time.Millisecond

// TestReplicationKill9LeaderUnderProducerAndGroup kills with SIGKILL the
// broker that leads partition 0 of a topic with 3 partitions, replication
// factor 3 and min.insync.replicas=2, while a kgo producer (acks=all,
// idempotent: kgo's defaults) writes distinct values and a kgo consumer
// group reads them. Production must go on through the failover: partition
// 0 gets a new leader from its ISR and takes acknowledged writes again.
// The killed broker is restarted and must rejoin the ISR of every
// partition. Then, with the producer stopped, every partition is read from
// its start to its high watermark: each acknowledged record must be there
// exactly once, at the partition and offset its acknowledgement named,
// in the order it was produced, and no value may appear twice at all; the
// group must have received every acknowledged record at least once. kctl
// topic describe must show the leadership and ISR change and the ISR grown
// back, and kcat -L must list all three brokers.
func TestReplicationKill9LeaderUnderProducerAndGroup(t *testing.T) {
	const topic = "replicated"
	c := newTestCluster(t, combinedExamples...)
	c.start()
	c.awaitHealthy(c.nodes[0].client)
	minISR := "2"
	created, err := admin(t, c.nodes...).CreateTopic(testContext(t), 3, 3, map[string]*string{"min.insync.replicas": &minISR}, topic)
	if err != nil || created.Err != nil {
		t.Fatalf("create %s: %v %v", topic, err, created.Err)
	}
	c.awaitFullISR(c.nodes[0], topic, 3, "after the topic was created")

	group := startGroupReader(t, c.brokers(), topic)
	producer := startProducer(t, c.brokers(), topic)
	c.awaitWithin(replicationGuard, "acknowledged records on every partition", func() (bool, string) {
		counts := producer.ackedPerPartition()
		return counts[0] >= 100 && counts[1] >= 100 && counts[2] >= 100, producer.String()
	})

	states, err := partitionStates(t, c.nodes[0].client, topic)
	if err != nil {
		t.Fatal(err)
	}
	victim := c.node(states[0].leader)
	survivor := c.runningBrokers()[0]
	if survivor == victim {
		survivor = c.runningBrokers()[1]
	}
	ackedBeforeKill := producer.ackedPerPartition()[0]
	c.kill9(victim)
	t.Logf("killed broker %d, leader of partition 0 with %d records acknowledged there", victim.id, ackedBeforeKill)

	c.awaitWithin(replicationGuard, fmt.Sprintf("partition 0 led by a survivor of broker %d, which left its ISR", victim.id), func() (bool, string) {
		states, err := partitionStates(t, survivor.client, topic)
		if err != nil {
			return false, err.Error()
		}
		p := states[0]
		return p.leader >= 0 && p.leader != victim.id && !slices.Contains(p.isr, victim.id), p.String()
	})
	var described string
	c.awaitWithin(replicationGuard, fmt.Sprintf("kctl topic describe shows partition 0 led off broker %d and its ISR without it", victim.id), func() (bool, string) {
		rows, output := describeRows(t, survivor.client, topic)
		described = output
		row, ok := rows[0]
		victimText := strconv.Itoa(int(victim.id))
		return ok && row.leader != "none" && row.leader != victimText && !slices.Contains(row.isr, victimText), output
	})
	t.Logf("kctl -b %s topic describe %s while broker %d is down:\n%s", survivor.client, topic, victim.id, described)
	c.awaitWithin(replicationGuard, "acknowledged writes to partition 0 under its new leader", func() (bool, string) {
		return producer.ackedPerPartition()[0] > ackedBeforeKill+100, producer.String()
	})

	c.startNode(victim)
	c.awaitFullISR(survivor, topic, 3, fmt.Sprintf("after broker %d restarted", victim.id))
	c.awaitWithin(replicationGuard, "kctl topic describe shows three in-sync replicas in every partition", func() (bool, string) {
		rows, output := describeRows(t, victim.client, topic)
		described = output
		full := len(rows) == 3
		for _, row := range rows { // order-independent: a conjunction
			full = full && len(row.isr) == 3
		}
		return full, output
	})
	t.Logf("kctl -b %s topic describe %s after broker %d rejoined:\n%s", victim.client, topic, victim.id, described)
	ackedAfterRejoin := producer.acked()
	c.awaitWithin(replicationGuard, "acknowledged writes after the restarted broker rejoined", func() (bool, string) {
		return producer.acked() > ackedAfterRejoin+300, producer.String()
	})

	acknowledged := producer.stop(t)
	t.Logf("producer stopped: %s", producer)
	log := readAll(t, survivor.client, topic)
	for _, problem := range logProblems(log, acknowledged) {
		t.Error(problem)
	}
	t.Logf("the log holds %d records; %d acknowledged records checked against it", len(log), len(acknowledged))
	group.awaitAll(t, acknowledged)

	listing := kcat(t, victim.client, "", "-L")
	for _, n := range c.nodes {
		if line := fmt.Sprintf("broker %d at %s", n.id, n.client); !strings.Contains(listing, line) {
			t.Errorf("kcat -L -b %s lacks %q:\n%s", victim.client, line, listing)
		}
	}
}

// partitionState is one partition's leader and ISR as one node's Metadata
// answer gives them.
type partitionState struct {
	leader int32
	isr    []int32
}

func (p partitionState) String() string {
	return fmt.Sprintf("leader %d, ISR %v", p.leader, p.isr)
}

// partitionStates asks exactly the node at addr (not whichever broker kgo
// picks, which could be the dead one) for topic's partitions.
func partitionStates(t *testing.T, addr, topic string) (map[int32]partitionState, error) {
	resp, err := ask(t, addr, &kmsg.MetadataRequest{Topics: []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr(topic)}}})
	if err != nil {
		return nil, err
	}
	md := resp.(*kmsg.MetadataResponse)
	if len(md.Topics) != 1 {
		return nil, fmt.Errorf("metadata of %d topics", len(md.Topics))
	}
	if err := kerr.ErrorForCode(md.Topics[0].ErrorCode); err != nil {
		return nil, fmt.Errorf("topic %s: %w", topic, err)
	}
	out := map[int32]partitionState{}
	for _, p := range md.Topics[0].Partitions {
		out[p.Partition] = partitionState{leader: p.Leader, isr: slices.Sorted(slices.Values(p.ISR))}
	}
	return out, nil
}

// awaitFullISR waits until node n says that each of topic's partitions
// has a leader and all three replicas in its ISR.
func (c *testCluster) awaitFullISR(n *clusterNode, topic string, partitions int, when string) {
	c.t.Helper()
	c.awaitWithin(replicationGuard, fmt.Sprintf("three in-sync replicas in each of %s's %d partitions %s", topic, partitions, when), func() (bool, string) {
		states, err := partitionStates(c.t, n.client, topic)
		if err != nil {
			return false, err.Error()
		}
		full := len(states) == partitions
		for _, p := range states { // order-independent: a conjunction
			full = full && p.leader >= 0 && len(p.isr) == 3
		}
		return full, fmt.Sprint(states)
	})
}

// kctlBinary is the kctl tool, built by buildKctl on first use beside the
// broker binary, so that the test runs it as users do.
var (
	kctlBinary    string
	kctlBuildOnce sync.Once
	kctlBuildErr  error
)

// buildKctl builds cmd/kctl once per test binary.
func buildKctl(t *testing.T) string {
	t.Helper()
	kctlBuildOnce.Do(func() {
		kctlBinary = filepath.Join(filepath.Dir(brokerBinary), "kctl")
		output, err := exec.Command("go", "build", "-o", kctlBinary, "../kctl").CombinedOutput()
		if err != nil {
			kctlBuildErr = fmt.Errorf("building kctl: %v\n%s", err, output)
		}
	})
	if kctlBuildErr != nil {
		t.Fatal(kctlBuildErr)
	}
	return kctlBinary
}

// kctlRow is one partition row of kctl topic describe, as printed.
type kctlRow struct {
	leader string
	isr    []string
}

// describeRows runs kctl -b addr topic describe topic and returns its
// partition rows by partition, with the whole output (or the failure) to
// explain a wait that does not end. A failed run gives no rows: the
// caller waits and asks again.
func describeRows(t *testing.T, addr, topic string) (map[int32]kctlRow, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, buildKctl(t), "-b", addr, "topic", "describe", topic)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Sprintf("kctl topic describe: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	rows := map[int32]kctlRow{}
	inTable := false
	for line := range strings.SplitSeq(stdout.String(), "\n") {
		fields := strings.Fields(line)
		switch {
		case len(fields) > 0 && fields[0] == "PARTITION":
			inTable = slices.Equal(fields, []string{"PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "LOG-START-OFFSET", "HIGH-WATERMARK"})
			if !inTable {
				t.Fatalf("kctl topic describe prints an unexpected table header %q", line)
			}
		case inTable && len(fields) == 7:
			partition, err := strconv.ParseInt(fields[0], 10, 32)
			if err != nil {
				t.Fatalf("kctl topic describe row %q: %v", line, err)
			}
			rows[int32(partition)] = kctlRow{leader: fields[1], isr: strings.Split(fields[4], ",")}
		}
	}
	return rows, stdout.String()
}

// ackedRecord is a record the producer had acknowledged: its place in the
// production order and where the broker said it was written.
type ackedRecord struct {
	index     int
	value     string
	partition int32
	offset    int64
}

// testProducer is a kgo producer with kgo's defaults (acks=all,
// idempotent, unlimited retries) writing keyed records with distinct
// values on its own goroutine until stopped, and recording every
// acknowledgement and every failure.
type testProducer struct {
	client *kgo.Client
	quit   chan struct{}
	done   chan struct{}

	mu           sync.Mutex
	records      []ackedRecord
	failures     []string // indefinite: such a record may or may not be in the log
	produced     int
	flushErr     error
	perPartition map[int32]int // acknowledged records by partition
}

// startProducer starts a testProducer on topic seeded with brokers.
func startProducer(t *testing.T, brokers []*clusterNode, topic string) *testProducer {
	t.Helper()
	var seeds []string
	for _, n := range brokers {
		seeds = append(seeds, n.client)
	}
	client, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	p := &testProducer{client: client, quit: make(chan struct{}), done: make(chan struct{}), perPartition: map[int32]int{}}
	go p.run()
	return p
}

// run produces a record every produceInterval until quit is closed, then
// flushes what is buffered, bounded by replicationGuard.
func (p *testProducer) run() {
	defer close(p.done)
	for index := 0; ; index++ {
		select {
		case <-p.quit:
			ctx, cancel := context.WithTimeout(context.Background(), replicationGuard)
			defer cancel()
			err := p.client.Flush(ctx)
			p.mu.Lock()
			p.flushErr = err
			p.mu.Unlock()
			return
		default:
		}
		value := fmt.Sprintf("value-%07d", index)
		p.mu.Lock()
		p.produced++
		p.mu.Unlock()
		// The record's own context never ends: a record must be
		// acknowledged or fail on its merits, not be cut off by the test.
		p.client.Produce(context.Background(), &kgo.Record{Key: []byte(value), Value: []byte(value)}, func(r *kgo.Record, err error) {
			p.mu.Lock()
			defer p.mu.Unlock()
			if err != nil {
				p.failures = append(p.failures, fmt.Sprintf("%s: %v", value, err))
				return
			}
			p.records = append(p.records, ackedRecord{index: index, value: value, partition: r.Partition, offset: r.Offset})
			p.perPartition[r.Partition]++
		})
		time.Sleep(produceInterval)
	}
}

// stop stops producing, waits for every buffered record's outcome and
// returns the acknowledged records in production order.
func (p *testProducer) stop(t *testing.T) []ackedRecord {
	t.Helper()
	close(p.quit)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.flushErr != nil {
		t.Fatalf("the producer's buffered records had no outcome within %v: %v", replicationGuard, p.flushErr)
	}
	if len(p.failures) > 0 {
		t.Errorf("%d of %d records failed (kgo retries without limit, so none should); the first: %s",
			len(p.failures), p.produced, p.failures[0])
	}
	records := slices.Clone(p.records)
	slices.SortFunc(records, func(a, b ackedRecord) int { return a.index - b.index })
	return records
}

// acked is how many records were acknowledged so far.
func (p *testProducer) acked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.records)
}

// ackedPerPartition is how many records were acknowledged so far, by
// partition.
func (p *testProducer) ackedPerPartition() map[int32]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[int32]int{}
	for partition, count := range p.perPartition { // order-independent: a copy
		out[partition] = count
	}
	return out
}

func (p *testProducer) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("%d produced, %d acknowledged (by partition %v), %d failed",
		p.produced, len(p.records), p.perPartition, len(p.failures))
}

// logProblems compares the log read from every partition's start to its
// high watermark with the acknowledged records (in production order) and
// describes every mismatch: an acknowledged record that is missing, or
// not at the partition and offset its acknowledgement named; within a
// partition, acknowledged records out of production order; and a value
// that appears twice, acknowledged or not (the idempotent producer's
// retries must not duplicate).
func logProblems(log []*kgo.Record, acknowledged []ackedRecord) []string {
	type place struct {
		partition int32
		offset    int64
	}
	var problems []string
	where := map[string]place{}
	for _, r := range log {
		value := string(r.Value)
		if earlier, ok := where[value]; ok {
			problems = append(problems, fmt.Sprintf("%s is in the log twice: partition %d offset %d and partition %d offset %d",
				value, earlier.partition, earlier.offset, r.Partition, r.Offset))
		}
		where[value] = place{r.Partition, r.Offset}
	}
	lastOffset := map[int32]int64{}
	for _, a := range acknowledged {
		got, ok := where[a.value]
		acknowledgedAt := place{a.partition, a.offset}
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("acknowledged %s (partition %d offset %d) is not in the log", a.value, a.partition, a.offset))
		case got != acknowledgedAt:
			problems = append(problems, fmt.Sprintf("acknowledged %s at partition %d offset %d is at partition %d offset %d",
				a.value, a.partition, a.offset, got.partition, got.offset))
		}
		if last, ok := lastOffset[a.partition]; ok && a.offset <= last {
			problems = append(problems, fmt.Sprintf("partition %d: %s was produced after a record acknowledged at offset %d but acknowledged at offset %d",
				a.partition, a.value, last, a.offset))
		}
		lastOffset[a.partition] = a.offset
	}
	return problems
}

// TestLogProblems checks that logProblems finds each kind of mismatch in a
// hand-made log, and none in a matching one, so that the replication test
// can fail.
func TestLogProblems(t *testing.T) {
	record := func(value string, partition int32, offset int64) *kgo.Record {
		return &kgo.Record{Value: []byte(value), Partition: partition, Offset: offset}
	}
	acknowledged := []ackedRecord{{0, "a", 0, 0}, {1, "b", 1, 0}, {2, "c", 0, 1}}
	cases := []struct {
		name string
		log  []*kgo.Record
		want string // a part of the only problem; empty for none
	}{
		{"matching, with an unacknowledged record", []*kgo.Record{record("a", 0, 0), record("c", 0, 1), record("x", 0, 2), record("b", 1, 0)}, ""},
		{"missing", []*kgo.Record{record("a", 0, 0), record("b", 1, 0)}, "acknowledged c (partition 0 offset 1) is not in the log"},
		{"misplaced", []*kgo.Record{record("a", 0, 0), record("x", 0, 1), record("c", 0, 2), record("b", 1, 0)}, "acknowledged c at partition 0 offset 1 is at partition 0 offset 2"},
		{"duplicated", []*kgo.Record{record("a", 0, 0), record("c", 0, 1), record("b", 0, 2), record("b", 1, 0)}, "b is in the log twice"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			problems := logProblems(c.log, acknowledged)
			if c.want == "" && len(problems) > 0 || c.want != "" && (len(problems) != 1 || !strings.Contains(problems[0], c.want)) {
				t.Fatalf("problems %q, want one containing %q", problems, c.want)
			}
		})
	}
	reordered := []ackedRecord{{0, "c", 0, 1}, {1, "a", 0, 0}}
	problems := logProblems([]*kgo.Record{record("a", 0, 0), record("c", 0, 1)}, reordered)
	if len(problems) != 1 || !strings.Contains(problems[0], "produced after a record acknowledged at offset 1 but acknowledged at offset 0") {
		t.Fatalf("out of production order: problems %q", problems)
	}
}

// groupReader is a kgo consumer group member that records every value it
// receives.
type groupReader struct {
	mu   sync.Mutex
	seen map[string]int
}

// startGroupReader starts a group member on topic, reading from the start,
// seeded with brokers.
func startGroupReader(t *testing.T, brokers []*clusterNode, topic string) *groupReader {
	t.Helper()
	var seeds []string
	for _, n := range brokers {
		seeds = append(seeds, n.client)
	}
	client, err := kgo.NewClient(kgo.SeedBrokers(seeds...),
		kgo.ConsumerGroup("replication-readers"), kgo.ConsumeTopics(topic),
		kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	g := &groupReader{seen: map[string]int{}}
	done := make(chan struct{})
	t.Cleanup(func() {
		client.Close()
		<-done
	})
	go func() {
		defer close(done)
		for {
			fetches := client.PollFetches(context.Background())
			if fetches.IsClientClosed() {
				return
			}
			g.mu.Lock()
			fetches.EachRecord(func(r *kgo.Record) { g.seen[string(r.Value)]++ })
			g.mu.Unlock()
		}
	}()
	return g
}

// awaitAll waits until the group has received every acknowledged record
// at least once.
func (g *groupReader) awaitAll(t *testing.T, acknowledged []ackedRecord) {
	t.Helper()
	deadline := time.Now().Add(replicationGuard)
	for {
		g.mu.Lock()
		var missing []string
		for _, a := range acknowledged {
			if g.seen[a.value] == 0 {
				missing = append(missing, a.value)
			}
		}
		received := len(g.seen)
		g.mu.Unlock()
		if len(missing) == 0 {
			t.Logf("the group received %d distinct values, every one of the %d acknowledged", received, len(acknowledged))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the group has not received %d of %d acknowledged records within %v (the first: %s)",
				len(missing), len(acknowledged), replicationGuard, missing[0])
		}
		time.Sleep(pollInterval)
	}
}
