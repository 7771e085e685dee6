package main

// These tests run a cluster of real broker processes on loopback, made from
// the shipped configuration files in examples/cluster/ with only their
// ports, data directories and timeouts rewritten, and judge it with
// franz-go (kgo, kadm): DescribeCluster v2 for brokers and fencing,
// DescribeQuorum for the metadata quorum, Metadata for leaders. Every wait
// polls with a generous bound (hangGuard); none asserts how fast anything
// happened.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker"
)

// Timeouts of the test clusters: a short broker session so that a killed
// broker is fenced soon, with heartbeats well inside it.
const (
	testSessionTimeoutMs    = 3000
	testHeartbeatIntervalMs = 500
)

// pollInterval is how often the cluster tests ask again while they wait.
const pollInterval = 200 * time.Millisecond

// fencingSlack is how long past the session timeout a test waits for a
// killed broker to be fenced: the controller's session check runs every
// 100 ms, and the rest covers a loaded machine.
const fencingSlack = 10 * time.Second

// TestClusterExampleConfigsLoad checks that the shipped cluster files load
// without a warning and agree with each other within each layout
// (examples/cluster: three combined nodes and a broker-only node that
// joins them; examples/cluster-separate: three controller-only nodes and
// three broker-only nodes): distinct node ids, listeners, metrics
// listeners and data directories; the same voters everywhere; each
// voter's CONTROLLER listener is the address the voters line gives it; and
// each file's roles are the ones its name says.
func TestClusterExampleConfigsLoad(t *testing.T) {
	layouts := map[string]int{"examples/cluster": 4, "examples/cluster-separate": 6}
	var voters string
	for _, dir := range []string{"examples/cluster", "examples/cluster-separate"} {
		paths, err := filepath.Glob(dir + "/*.properties")
		if err != nil || len(paths) != layouts[dir] {
			t.Fatalf("%s: want %d files, have %v %v", dir, layouts[dir], paths, err)
		}
		seen := map[string]string{}
		unique := func(path, what, value string) {
			if other, ok := seen[what+" "+value]; ok {
				t.Errorf("%s and %s share %s %s", other, path, what, value)
			}
			seen[what+" "+value] = path
		}
		for _, path := range paths {
			cfg, warnings, err := loadConfig(path)
			if err != nil || len(warnings) > 0 {
				t.Fatalf("%s: %v, warnings %q", path, err, warnings)
			}
			unique(path, "node.id", fmt.Sprint(cfg.NodeID))
			unique(path, "log.dirs", cfg.LogDir)
			unique(path, "metrics.listener", cfg.MetricsListener)
			for _, l := range append(append([]string(nil), cfg.Listeners...), cfg.ControllerListeners...) {
				unique(path, "listener", l)
			}
			if text := fmt.Sprint(cfg.QuorumVoters); voters == "" {
				voters = text
			} else if text != voters {
				t.Errorf("%s names voters %s, another file %s", path, text, voters)
			}
			isVoter := false
			for _, v := range cfg.QuorumVoters {
				if v.ID == cfg.NodeID {
					isVoter = true
					if !reflect.DeepEqual(cfg.ControllerListeners, []string{v.Address}) {
						t.Errorf("%s: controller listeners %v, but the voters line says %s", path, cfg.ControllerListeners, v.Address)
					}
				}
			}
			name := filepath.Base(path)
			wantVoter := strings.HasPrefix(name, "node-") || strings.HasPrefix(name, "controller-")
			wantBroker := !strings.HasPrefix(name, "controller-")
			if isVoter != wantVoter || cfg.IsController() != wantVoter || cfg.IsBroker() != wantBroker {
				t.Errorf("%s: voter %v, controller role %v, broker role %v; want %v, %v, %v",
					path, isVoter, cfg.IsController(), cfg.IsBroker(), wantVoter, wantVoter, wantBroker)
			}
		}
	}
}

// clusterNode is one node of a test cluster: its id, addresses and files.
type clusterNode struct {
	id         int32
	client     string // the PLAINTEXT listener
	configPath string
	dataDir    string
	process    *brokerProcess
}

// testCluster is a cluster of real broker processes.
type testCluster struct {
	t     *testing.T
	nodes []*clusterNode
}

// freeLoopbackPorts returns count loopback ports that were free a moment
// ago: the voters' CONTROLLER ports must be known before any node starts.
func freeLoopbackPorts(t *testing.T, count int) []int {
	t.Helper()
	ports := make([]int, count)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// rewriteProperties replaces the value of each key in values on its line of
// text; every key must have exactly one line, so that a change in the
// shipped files that this test relies on fails it.
func rewriteProperties(t *testing.T, text string, values map[string]string) string {
	t.Helper()
	lines := strings.Split(text, "\n")
	replaced := map[string]int{}
	for i, line := range lines {
		key, _, ok := strings.Cut(line, "=")
		if value, want := values[key]; ok && want && !strings.HasPrefix(line, "#") {
			lines[i] = key + "=" + value
			replaced[key]++
		}
	}
	for key := range values { // order-independent: each key is checked alone
		if replaced[key] != 1 {
			t.Fatalf("the example file sets %s %d times; this test rewrites exactly one line", key, replaced[key])
		}
	}
	return strings.Join(lines, "\n")
}

// newTestCluster writes a cluster's configs from the shipped example files
// at paths, in order, on free loopback ports and temporary data
// directories, keeping each file's node.id and roles: a voter gets a
// CONTROLLER listener, a node with the broker role a PLAINTEXT one.
// Nothing starts yet.
func newTestCluster(t *testing.T, paths ...string) *testCluster {
	t.Helper()
	configs := make([]broker.Config, len(paths))
	var voterList []string
	ports := freeLoopbackPorts(t, 2*len(paths))
	controllerAddr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[len(paths)+i]) }
	for i, path := range paths {
		cfg, _, err := loadConfig(path)
		if err != nil {
			t.Fatal(err)
		}
		configs[i] = cfg
		if cfg.IsController() {
			voterList = append(voterList, fmt.Sprintf("%d@%s", cfg.NodeID, controllerAddr(i)))
		}
	}
	c := &testCluster{t: t}
	for i, path := range paths {
		cfg := configs[i]
		n := &clusterNode{id: cfg.NodeID, dataDir: t.TempDir()}
		var listeners []string
		if cfg.IsBroker() {
			n.client = fmt.Sprintf("127.0.0.1:%d", ports[i])
			listeners = append(listeners, "PLAINTEXT://"+n.client)
		}
		if cfg.IsController() {
			listeners = append(listeners, "CONTROLLER://"+controllerAddr(i))
		}
		values := map[string]string{
			"listeners":                    strings.Join(listeners, ","),
			"controller.quorum.voters":     strings.Join(voterList, ","),
			"log.dirs":                     n.dataDir,
			"metrics.listener":             "",
			"broker.session.timeout.ms":    fmt.Sprint(testSessionTimeoutMs),
			"broker.heartbeat.interval.ms": fmt.Sprint(testHeartbeatIntervalMs),
		}
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		n.configPath = filepath.Join(t.TempDir(), filepath.Base(path))
		if err := os.WriteFile(n.configPath, []byte(rewriteProperties(t, string(text), values)), 0o644); err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, n)
	}
	return c
}

// The shipped layouts: three combined nodes, a broker-only node that joins
// them, and separate controllers with their brokers.
var (
	combinedExamples = []string{
		"examples/cluster/node-1.properties", "examples/cluster/node-2.properties", "examples/cluster/node-3.properties",
	}
	joiningBrokerExample = "examples/cluster/broker-4.properties"
	separateExamples     = []string{
		"examples/cluster-separate/controller-1.properties", "examples/cluster-separate/controller-2.properties",
		"examples/cluster-separate/controller-3.properties", "examples/cluster-separate/broker-4.properties",
		"examples/cluster-separate/broker-5.properties", "examples/cluster-separate/broker-6.properties",
	}
)

// brokers returns the nodes that serve clients.
func (c *testCluster) brokers() []*clusterNode {
	var out []*clusterNode
	for _, n := range c.nodes {
		if n.client != "" {
			out = append(out, n)
		}
	}
	return out
}

// start starts every node that is not running.
func (c *testCluster) start() {
	for _, n := range c.nodes {
		if n.process == nil {
			c.startNode(n)
		}
	}
}

// startNode starts the binary for n and waits for its "broker started"
// line. The process is killed when the test ends if it still runs.
func (c *testCluster) startNode(n *clusterNode) {
	t := c.t
	t.Helper()
	p := &brokerProcess{dataDir: n.dataDir, addr: n.client, log: &logBuffer{addr: make(chan string, 1)}, done: make(chan struct{})}
	p.cmd = exec.Command(brokerBinary, "--config", n.configPath)
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
			t.Logf("node %d log:\n%s", n.id, p.log.String())
		}
	})
	n.process = p
	c.await(fmt.Sprintf("node %d logs its start", n.id), func() (bool, string) {
		select {
		case <-p.done:
			t.Fatalf("node %d exited before starting: %v\n%s", n.id, p.waitErr, p.log.String())
		default:
		}
		return strings.Contains(p.log.String(), `msg="broker started"`), "no start line yet"
	})
}

// kill9 kills n's process with SIGKILL and waits for it to be gone.
func (c *testCluster) kill9(n *clusterNode) {
	c.t.Helper()
	n.process.signal(c.t, 9)
	n.process = nil
}

// node returns the node with id.
func (c *testCluster) node(id int32) *clusterNode {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	c.t.Fatalf("no node %d", id)
	return nil
}

// runningBrokers returns the nodes that serve clients and whose process
// runs.
func (c *testCluster) runningBrokers() []*clusterNode {
	var out []*clusterNode
	for _, n := range c.brokers() {
		if n.process != nil {
			out = append(out, n)
		}
	}
	return out
}

// await polls check until it reports true, and fails the test with its
// last explanation at the hang guard.
func (c *testCluster) await(what string, check func() (bool, string)) {
	c.t.Helper()
	c.awaitWithin(hangGuard, what, check)
}

// awaitWithin is await with its own bound.
func (c *testCluster) awaitWithin(bound time.Duration, what string, check func() (bool, string)) {
	c.t.Helper()
	deadline := time.Now().Add(bound)
	for {
		ok, why := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not seen within %v; last: %s", what, bound, why)
		}
		time.Sleep(pollInterval)
	}
}

// ask sends req to exactly the node at addr (not wherever kgo would route
// it) and returns the answer or the error.
func ask(t *testing.T, addr string, req kmsg.Request) (kmsg.Response, error) {
	client, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return client.SeedBrokers()[0].Request(ctx, req)
}

// clusterView is what one node says of the cluster: DescribeCluster v2
// with fenced brokers, and the metadata quorum as its leader describes it.
type clusterView struct {
	controller int32
	fenced     map[int32]bool // by broker id, every registered broker
	leader     int32          // the quorum leader
	epoch      int32
	voters     []int32
	observers  []int32
}

func (v clusterView) String() string {
	return fmt.Sprintf("controller %d, fenced %v, quorum leader %d epoch %d, voters %v, observers %v",
		v.controller, v.fenced, v.leader, v.epoch, v.voters, v.observers)
}

// controllerAgrees reports whether the quorum has a leader and
// DescribeCluster names it as the controller, or, when the leader is a
// controller-only node (which clients cannot reach), names a registered
// broker instead, as Kafka's brokers do, to take admin requests.
func (v clusterView) controllerAgrees() bool {
	if v.leader < 0 {
		return false
	}
	if _, leaderIsBroker := v.fenced[v.leader]; leaderIsBroker {
		return v.controller == v.leader
	}
	_, controllerIsBroker := v.fenced[v.controller]
	return controllerIsBroker
}

// view asks the node at addr for a clusterView.
func view(t *testing.T, addr string) (clusterView, error) {
	describe := kmsg.NewPtrDescribeClusterRequest()
	describe.Version = 2
	describe.IncludeFencedBrokers = true
	resp, err := ask(t, addr, describe)
	if err != nil {
		return clusterView{}, err
	}
	dc := resp.(*kmsg.DescribeClusterResponse)
	if err := kerr.ErrorForCode(dc.ErrorCode); err != nil {
		return clusterView{}, err
	}
	v := clusterView{controller: dc.ControllerID, fenced: map[int32]bool{}}
	for _, b := range dc.Brokers {
		v.fenced[b.NodeID] = b.IsFenced
	}
	quorum := kmsg.NewPtrDescribeQuorumRequest()
	topic := kmsg.NewDescribeQuorumRequestTopic()
	topic.Topic = "__cluster_metadata"
	topic.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
	quorum.Topics = append(quorum.Topics, topic)
	if resp, err = ask(t, addr, quorum); err != nil {
		return v, err
	}
	dq := resp.(*kmsg.DescribeQuorumResponse)
	if err := kerr.ErrorForCode(dq.ErrorCode); err != nil {
		return v, err
	}
	if len(dq.Topics) != 1 || len(dq.Topics[0].Partitions) != 1 {
		return v, fmt.Errorf("DescribeQuorum answered %d topics", len(dq.Topics))
	}
	p := dq.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return v, err
	}
	v.leader, v.epoch = p.LeaderID, p.LeaderEpoch
	for _, r := range p.CurrentVoters {
		v.voters = append(v.voters, r.ReplicaID)
	}
	for _, r := range p.Observers {
		v.observers = append(v.observers, r.ReplicaID)
	}
	slices.Sort(v.voters)
	slices.Sort(v.observers)
	return v, nil
}

// awaitHealthy waits until the node at addr reports every broker of the
// cluster (and nothing else) registered and unfenced, and a quorum leader
// that its DescribeCluster agrees with (controllerAgrees), and returns
// that view.
func (c *testCluster) awaitHealthy(addr string) clusterView {
	c.t.Helper()
	var last clusterView
	c.await("every broker unfenced under one controller", func() (bool, string) {
		v, err := view(c.t, addr)
		if err != nil {
			return false, err.Error()
		}
		last = v
		brokers := c.brokers()
		if !v.controllerAgrees() || len(v.fenced) != len(brokers) {
			return false, v.String()
		}
		for _, n := range brokers {
			if fenced, ok := v.fenced[n.id]; !ok || fenced {
				return false, v.String()
			}
		}
		return true, ""
	})
	return last
}

// admin is a kadm client seeded with the given nodes only.
func admin(t *testing.T, nodes ...*clusterNode) *kadm.Client {
	t.Helper()
	var seeds []string
	for _, n := range nodes {
		seeds = append(seeds, n.client)
	}
	client, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RetryTimeout(hangGuard))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return kadm.NewClient(client)
}

// leaders maps each partition of topic to its leader as Metadata from the
// node at addr says (-1 for none).
func leaders(t *testing.T, addr, topic string) (map[int32]int32, error) {
	states, err := partitionStates(t, addr, topic)
	if err != nil {
		return nil, err
	}
	out := make(map[int32]int32, len(states))
	for p, s := range states { // order-independent: copied into a map
		out[p] = s.leader
	}
	return out, nil
}

// TestClusterKill9ActiveController starts three combined nodes and a
// broker-only node from the shipped files, checks that all four are
// registered and unfenced and that the broker-only node follows the quorum
// as an observer, creates a topic, then kills the active controller (the
// quorum leader DescribeQuorum names) with SIGKILL. Another voter must take
// over in a later epoch and be named controller; the topic created before
// must still exist with its partitions, and a topic must be creatable
// after, seen by every surviving node.
func TestClusterKill9ActiveController(t *testing.T) {
	c := newTestCluster(t, append(combinedExamples, joiningBrokerExample)...)
	c.start()
	before := c.awaitHealthy(c.nodes[0].client)
	if !reflect.DeepEqual(before.voters, []int32{1, 2, 3}) || !reflect.DeepEqual(before.observers, []int32{4}) {
		t.Fatalf("want voters 1-3 and observer 4: %v", before)
	}
	ctx := testContext(t)
	if _, err := admin(t, c.nodes...).CreateTopic(ctx, 3, 3, nil, "before"); err != nil {
		t.Fatalf("create before: %v", err)
	}

	survivors := c.killController(before)
	c.awaitTopic(survivors, "before", 3)
	created, err := admin(t, survivors...).CreateTopic(ctx, 2, 3, nil, "after")
	if err != nil || created.Err != nil {
		t.Fatalf("create after the kill: %v %v", err, created.Err)
	}
	c.awaitTopic(survivors, "after", 2)
}

// killController kills the active controller that before names with
// SIGKILL, waits until a surviving broker names another controller, which
// leads the quorum in a later epoch, and returns the running brokers.
func (c *testCluster) killController(before clusterView) []*clusterNode {
	c.t.Helper()
	old := c.node(before.leader)
	c.kill9(old)
	killed := time.Now()
	survivors := c.runningBrokers()
	var after clusterView
	c.await("a new active controller", func() (bool, string) {
		v, err := view(c.t, survivors[0].client)
		if err != nil {
			return false, err.Error()
		}
		after = v
		return v.leader != old.id && v.epoch > before.epoch && v.controllerAgrees(), v.String()
	})
	c.t.Logf("controller %d (epoch %d) killed; controller %d seen active in epoch %d after %v",
		old.id, before.epoch, after.leader, after.epoch, time.Since(killed).Round(time.Millisecond))
	return survivors
}

// awaitTopic waits until every node in nodes knows topic with its
// partitions. Each node learns metadata by replaying the log at its own
// pace (an observer must first find a new leader), so each is asked until
// it knows the topic: what is checked is that none lost it, not how soon
// each learns it.
func (c *testCluster) awaitTopic(nodes []*clusterNode, topic string, partitions int) {
	c.t.Helper()
	for _, n := range nodes {
		c.await(fmt.Sprintf("node %d knows topic %s with %d partitions", n.id, topic, partitions), func() (bool, string) {
			got, err := leaders(c.t, n.client, topic)
			if err != nil {
				return false, err.Error()
			}
			return len(got) == partitions, fmt.Sprint(got)
		})
	}
}

// TestClusterSeparateControllers runs the shipped layout with separate
// controllers: three controller-only voters, which must not register as
// brokers, and three broker-only nodes, which must register unfenced and
// follow the quorum as observers. A topic's partitions must be led by
// brokers only; after the active controller is killed with SIGKILL,
// another takes over, the topic is still there and a new one can be
// created.
func TestClusterSeparateControllers(t *testing.T) {
	c := newTestCluster(t, separateExamples...)
	c.start()
	brokers := c.brokers()
	before := c.awaitHealthy(brokers[0].client)
	if !reflect.DeepEqual(before.voters, []int32{1, 2, 3}) || !reflect.DeepEqual(before.observers, []int32{4, 5, 6}) {
		t.Fatalf("want voters 1-3 and observers 4-6: %v", before)
	}
	ctx := testContext(t)
	if _, err := admin(t, brokers...).CreateTopic(ctx, 6, 3, nil, "placed"); err != nil {
		t.Fatalf("create placed: %v", err)
	}
	c.await("every partition of placed led by a broker-only node", func() (bool, string) {
		got, err := leaders(t, brokers[0].client, "placed")
		if err != nil {
			return false, err.Error()
		}
		for _, leader := range got { // order-independent: a conjunction
			if leader < 4 {
				return false, fmt.Sprint(got)
			}
		}
		return len(got) == 6, fmt.Sprint(got)
	})
	survivors := c.killController(before)
	c.awaitTopic(survivors, "placed", 6)
	created, err := admin(t, survivors...).CreateTopic(ctx, 2, 3, nil, "after")
	if err != nil || created.Err != nil {
		t.Fatalf("create after the kill: %v %v", err, created.Err)
	}
	c.awaitTopic(survivors, "after", 2)
}

// TestClusterKill9BrokerFencedLeadersMoveRestartUnfenced kills with SIGKILL
// a broker that is not the controller and leads partitions, watches the
// controller fence it (DescribeCluster v2, IsFenced) and move its
// leaderships, then restarts it and watches it unfenced.
//
// The topic "moving" has three replicas, and the kill waits until every
// ISR holds all three: every partition the dead broker led must move to a
// live ISR member (a clean election). The topic "stuck" has one replica
// per partition: a partition on the dead broker has no other in-sync
// replica and must be left without a leader (Kafka's choice: no unclean
// election unless allowed), and the others keep their leaders.
func TestClusterKill9BrokerFencedLeadersMoveRestartUnfenced(t *testing.T) {
	c := newTestCluster(t, combinedExamples...)
	c.start()
	healthy := c.awaitHealthy(c.nodes[0].client)
	ctx := testContext(t)
	create := admin(t, c.nodes...)
	if _, err := create.CreateTopic(ctx, 6, 3, nil, "moving"); err != nil {
		t.Fatalf("create moving: %v", err)
	}
	if _, err := create.CreateTopic(ctx, 6, 1, nil, "stuck"); err != nil {
		t.Fatalf("create stuck: %v", err)
	}
	var movingBefore, stuckBefore map[int32]int32
	c.await("every partition led", func() (bool, string) {
		var err1, err2 error
		movingBefore, err1 = leaders(t, c.nodes[0].client, "moving")
		stuckBefore, err2 = leaders(t, c.nodes[0].client, "stuck")
		return err1 == nil && err2 == nil && allLed(movingBefore) && allLed(stuckBefore),
			fmt.Sprintf("moving %v %v, stuck %v %v", movingBefore, err1, stuckBefore, err2)
	})
	c.awaitFullISR(c.nodes[0], "moving", 6, "before the kill")
	var victim *clusterNode
	for _, n := range c.nodes {
		if n.id != healthy.leader && slices.Contains(values(movingBefore), n.id) && slices.Contains(values(stuckBefore), n.id) {
			victim = n
			break
		}
	}
	if victim == nil {
		t.Fatalf("no broker besides controller %d leads in both topics: moving %v, stuck %v", healthy.leader, movingBefore, stuckBefore)
	}
	c.kill9(victim)
	killed := time.Now()
	observer := c.node(healthy.leader)

	// The controller fences a broker broker.session.timeout.ms after its
	// last heartbeat; the slack is generous, since the machine is shared
	// and this checks that fencing happens, not how fast.
	c.awaitWithin(testSessionTimeoutMs*time.Millisecond+fencingSlack, fmt.Sprintf("broker %d fenced", victim.id), func() (bool, string) {
		v, err := view(t, observer.client)
		if err != nil {
			return false, err.Error()
		}
		return v.fenced[victim.id], v.String()
	})
	t.Logf("broker %d killed; seen fenced after %v (session timeout %d ms)", victim.id, time.Since(killed).Round(time.Millisecond), testSessionTimeoutMs)
	c.await(fmt.Sprintf("broker %d's leaderships moved (moving) or given up (stuck)", victim.id), func() (bool, string) {
		moving, err1 := leaders(t, observer.client, "moving")
		stuck, err2 := leaders(t, observer.client, "stuck")
		if err1 != nil || err2 != nil {
			return false, fmt.Sprint(err1, err2)
		}
		for p, leader := range moving { // order-independent: every partition is checked alone
			if leader < 0 || leader == victim.id {
				return false, fmt.Sprintf("moving partition %d leader %d", p, leader)
			}
		}
		for p, leader := range stuck { // order-independent: every partition is checked alone
			want := stuckBefore[p]
			if want == victim.id {
				want = -1
			}
			if leader != want {
				return false, fmt.Sprintf("stuck partition %d leader %d, want %d", p, leader, want)
			}
		}
		return true, ""
	})

	restarted := time.Now()
	c.startNode(victim)
	c.awaitHealthy(observer.client)
	t.Logf("broker %d restarted; seen unfenced %v after its process started (the start line is polled every %v)",
		victim.id, time.Since(restarted).Round(time.Millisecond), pollInterval)
}

// allLed reports whether every partition has a leader.
func allLed(leaders map[int32]int32) bool {
	for _, l := range leaders { // order-independent: a conjunction
		if l < 0 {
			return false
		}
	}
	return len(leaders) > 0
}

// values lists a map's values (in no particular order).
func values(m map[int32]int32) []int32 {
	var out []int32
	for _, v := range m { // order-independent: used only for membership
		out = append(out, v)
	}
	return out
}
