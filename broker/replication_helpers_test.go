package broker

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker/metadata"
	"github.com/kafkasim/kafkasim/broker/quorum"
	"github.com/kafkasim/kafkasim/client"
	"github.com/kafkasim/kafkasim/core/record"
	"github.com/kafkasim/kafkasim/sim"
)

// Shared scaffolding of the replication scenarios
// (replication_scenario_test.go): a simulated cluster of three
// controller-only voters (b1 to b3) and three brokers (b4 to b6), so that
// any broker may crash or be cut off without costing the metadata quorum
// its majority; every broker's fsync goes through the simulator's I/O with
// a latency, so that a power loss can strike while a sync is in flight.
// Requests are sent raw from the client host over the simulated network,
// so that each error code a client would see can be asserted.

// replicationSyncLatency is the simulated fsync's latency: several network
// hops (at most 2 ms each), so that an answer can overtake a sync.
var replicationSyncLatency = sim.IOLatency{Min: 5 * time.Millisecond, Median: 10 * time.Millisecond}

// replicationTopic is the one topic every scenario writes: one partition,
// three replicas, min.insync.replicas 2.
const replicationTopic = "ledger"

// replicationCluster is a simCluster built for the replication scenarios.
type replicationCluster struct {
	*simCluster
	ios      map[int32]*sim.IO
	channels map[string]*quorum.Channel
}

// newReplicationCluster builds and starts the cluster, waits for every
// broker to be unfenced, and creates replicationTopic with all three
// brokers in its ISR. configure, if set, adjusts every node's
// configuration after the scenarios' defaults.
func newReplicationCluster(t *testing.T, seed uint64, configure func(*Config)) *replicationCluster {
	t.Helper()
	sc := &simCluster{t: t, sched: sim.NewScheduler(seed)}
	rc := &replicationCluster{simCluster: sc, ios: make(map[int32]*sim.IO), channels: make(map[string]*quorum.Channel)}
	var voters []quorum.Voter
	for i := 1; i <= 3; i++ {
		voters = append(voters, quorum.Voter{ID: int32(i), Address: fmt.Sprintf("b%d:9093", i)})
	}
	var bootstrap []string
	for i := 1; i <= 6; i++ {
		host := sc.sched.AddNode(fmt.Sprintf("b%d", i), sim.NodeOptions{})
		host.SetDisk(sim.NewDisk(sc.sched.ForkRand(), sim.DiskOptions{}))
		rc.ios[int32(i)] = sim.NewIO(host, sc.sched.ForkRand(), replicationSyncLatency)
		cfg := DefaultConfig()
		cfg.NodeID = int32(i)
		cfg.QuorumVoters = voters
		if i <= 3 {
			cfg.ProcessRoles = []string{roleController}
			cfg.ControllerListeners = []string{fmt.Sprintf("b%d:9093", i)}
		} else {
			cfg.ProcessRoles = []string{roleBroker}
			cfg.Listeners = []string{fmt.Sprintf("b%d:9092", i)}
			bootstrap = append(bootstrap, cfg.Listeners[0])
		}
		cfg.GroupInitialRebalanceDelayMs = 0
		cfg.DefaultReplicationFactor = 3
		cfg.OffsetsTopicReplicationFactor = 3
		cfg.MinInsyncReplicas = 2
		cfg.ReplicaLagTimeMaxMs = clusterScenarioReplicaLagMs
		// Leaderships move only when a scenario moves them.
		cfg.AutoLeaderRebalance = false
		if configure != nil {
			configure(&cfg)
		}
		n := &simClusterNode{c: sc, id: int32(i), host: host, cfg: cfg}
		sc.nodes = append(sc.nodes, n)
		rc.boot(n)
	}
	clientHost := sc.sched.AddNode("client", sim.NodeOptions{})
	var err error
	sc.client, err = client.NewCluster(clientHost.Env(), client.ClusterConfig{Bootstrap: bootstrap, RequestTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sc.admin = client.NewAdmin(sc.client)
	sc.runUntil("an active controller", 20*time.Second, func() bool { return sc.activeController() != nil })
	sc.runUntil("every broker unfenced", 30*time.Second, sc.unfenced)
	rc.createReplicatedTopic()
	return rc
}

// clusterScenarioReplicaLagMs is replica.lag.time.max.ms in the scenarios,
// as in the simulator's cluster runs.
const clusterScenarioReplicaLagMs = 10_000

// boot builds node n from its disk with the simulator's I/O, as a start
// or a restart does.
func (rc *replicationCluster) boot(n *simClusterNode) {
	env := n.host.Env()
	env.IO = rc.ios[n.id]
	node, err := New(env, n.cfg)
	if err != nil {
		rc.t.Fatalf("node %d: %v", n.id, err)
	}
	if err := node.Start(); err != nil {
		rc.t.Fatalf("node %d: start: %v", n.id, err)
	}
	n.node = node
}

// restart boots a crashed node again.
func (rc *replicationCluster) restart(n *simClusterNode) {
	n.host.Restart()
	rc.boot(n)
}

// powerOff cuts a node's power: its unsynced writes and fsyncs in flight
// are lost, and its peers learn of it only through their timeouts.
func (rc *replicationCluster) powerOff(n *simClusterNode) {
	n.host.PowerOff()
	n.node = nil
}

// broker returns the node with broker id id (4 to 6).
func (rc *replicationCluster) broker(id int32) *simClusterNode { return rc.nodes[id-1] }

// createReplicatedTopic creates replicationTopic and waits until its
// leader has all three replicas in its ISR and every replica plays its
// role.
func (rc *replicationCluster) createReplicatedTopic() {
	rc.t.Helper()
	done, result := false, ""
	spec := client.TopicSpec{Topic: replicationTopic, Partitions: 1, ReplicationFactor: 3,
		Configs: map[string]string{"min.insync.replicas": "2"}}
	rc.admin.CreateTopics([]client.TopicSpec{spec}, func(errs []client.TopicError, err error) {
		done = true
		switch {
		case err != nil:
			result = err.Error()
		case len(errs) != 1 || errs[0].Err != nil:
			result = fmt.Sprintf("%v", errs)
		}
	})
	rc.runUntil("CreateTopics answered", 30*time.Second, func() bool { return done })
	if result != "" {
		rc.t.Fatalf("create %s: %s", replicationTopic, result)
	}
	rc.runUntil("every replica in its role", 30*time.Second, func() bool {
		state, ok := rc.state()
		if !ok || state.Leader == metadata.NoLeader || len(state.ISR) != 3 {
			return false
		}
		for _, id := range state.Replicas {
			p := rc.local(id)
			want := roleFollower
			if id == state.Leader {
				want = roleLeader
			}
			if p == nil || p.repl.role != want {
				return false
			}
		}
		return true
	})
}

// state is the partition's committed state in the active controller's
// image.
func (rc *replicationCluster) state() (metadata.PartitionState, bool) {
	active := rc.activeController()
	if active == nil {
		return metadata.PartitionState{}, false
	}
	topic, ok := active.node.cluster.image.TopicByName(replicationTopic)
	if !ok || len(topic.Partitions) == 0 {
		return metadata.PartitionState{}, false
	}
	return topic.Partitions[0], true
}

// mustState is state, failing the test when there is none.
func (rc *replicationCluster) mustState() metadata.PartitionState {
	rc.t.Helper()
	state, ok := rc.state()
	if !ok {
		rc.t.Fatal("no active controller knows the topic")
	}
	return state
}

// local is broker id's local replica of the partition, or nil (the broker
// is down or has none).
func (rc *replicationCluster) local(id int32) *partition {
	n := rc.broker(id)
	if n.node == nil {
		return nil
	}
	t := n.node.catalog.topics[replicationTopic]
	if t == nil || len(t.partitions) == 0 || t.partitions[0].log == nil {
		return nil
	}
	return t.partitions[0]
}

// others returns the partition's replicas other than id, in replica order.
func others(state metadata.PartitionState, id int32) []int32 {
	return slices.DeleteFunc(slices.Clone(state.Replicas), func(r int32) bool { return r == id })
}

// third returns the partition's replica that is neither a nor b.
func third(state metadata.PartitionState, a, b int32) int32 {
	for _, r := range state.Replicas {
		if r != a && r != b {
			return r
		}
	}
	panic("no third replica")
}

// produceCodeOf is the error code of a one-partition Produce's answer.
func produceCodeOf(resp kmsg.Response) int16 {
	return resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
}

// logValues reads broker id's whole local log and returns its records'
// values in offset order, with the leader epoch of each, as written on its
// disk: the replica's content, whatever the broker would serve.
func (rc *replicationCluster) logValues(id int32) (values []string, epochs []int32) {
	rc.t.Helper()
	p := rc.local(id)
	if p == nil {
		rc.t.Fatalf("broker %d has no local replica", id)
	}
	data, err := p.log.Read(p.log.LogStartOffset(), 64<<20, p.log.LogEndOffset(), nil)
	if err != nil {
		rc.t.Fatalf("broker %d: read its log: %v", id, err)
	}
	return decodeValues(rc.t, data)
}

// decodeValues decodes record batches into their values and the batches'
// leader epochs, one per record.
func decodeValues(t testing.TB, data []byte) (values []string, epochs []int32) {
	t.Helper()
	for len(data) > 0 {
		size, err := record.BatchSize(data)
		if err != nil || size > len(data) {
			break // a partial batch at the end of a fetch
		}
		h, recs, err := record.DecodeRecords(data[:size])
		if err != nil {
			t.Fatalf("decode a batch: %v", err)
		}
		for _, r := range recs {
			values = append(values, string(r.Value))
			epochs = append(epochs, h.PartitionLeaderEpoch)
		}
		data = data[size:]
	}
	return values, epochs
}

// send sends a request from the client host to address and calls done
// with the answer, or an error if the connection broke first.
func (rc *replicationCluster) send(address string, req kmsg.Request, done func(kmsg.Response, error)) {
	ch := rc.channels[address]
	if ch == nil {
		host := rc.sched.Node("client")
		ch = quorum.NewChannel(host.Env(), host.Env().Log, address, "replication-scenario", 10*time.Second)
		rc.channels[address] = ch
	}
	ch.Send(req, done)
}

// roundTrip sends a request to broker id and runs the simulation until it
// is answered; it fails the test if the connection breaks first.
func (rc *replicationCluster) roundTrip(id int32, req kmsg.Request) kmsg.Response {
	rc.t.Helper()
	var resp kmsg.Response
	var failure error
	answered := false
	rc.send(brokerAddress(id), req, func(r kmsg.Response, err error) { resp, failure, answered = r, err, true })
	rc.runUntil(fmt.Sprintf("%s answered by broker %d", kmsg.NameForKey(req.Key()), id), 60*time.Second, func() bool { return answered })
	if failure != nil {
		rc.t.Fatalf("%s to broker %d: %v", kmsg.NameForKey(req.Key()), id, failure)
	}
	return resp
}

// brokerAddress is broker id's client listener.
func brokerAddress(id int32) string { return fmt.Sprintf("b%d:9092", id) }

// produceRaw builds a Produce of one batch holding values, with acks and a
// timeout of timeoutMs.
func produceRaw(t testing.TB, acks int16, timeoutMs int32, values ...string) *kmsg.ProduceRequest {
	t.Helper()
	req := produceRequest(t, replicationTopic, 0, acks, record.NewBatchSpec(record.CodecNone), values...)
	req.TimeoutMillis = timeoutMs
	return req
}

// produce writes values to broker id in one batch with acks and returns
// the partition's error code and base offset.
func (rc *replicationCluster) produce(id int32, acks int16, values ...string) (int16, int64) {
	rc.t.Helper()
	resp := rc.roundTrip(id, produceRaw(rc.t, acks, 5000, values...)).(*kmsg.ProduceResponse)
	p := resp.Topics[0].Partitions[0]
	return p.ErrorCode, p.BaseOffset
}

// mustProduce is produce, failing the test unless the write is
// acknowledged.
func (rc *replicationCluster) mustProduce(id int32, acks int16, values ...string) int64 {
	rc.t.Helper()
	code, offset := rc.produce(id, acks, values...)
	if code != 0 {
		rc.t.Fatalf("produce %v with acks=%d to broker %d: %v", values, acks, id, kerr.ErrorForCode(code))
	}
	return offset
}

// consumed is what a consumer's Fetch from offset 0 got from a broker.
type consumed struct {
	code          int16
	highWatermark int64
	values        []string
}

// consume fetches the partition from offset 0 as a consumer (Fetch v12,
// no leader epoch, no wait) from broker id.
func (rc *replicationCluster) consume(id int32) consumed {
	rc.t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.ReplicaID = -1
	req.MaxBytes = 1 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = replicationTopic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LastFetchedEpoch = 1<<20, -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := rc.roundTrip(id, req).(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 {
		return consumed{code: resp.ErrorCode}
	}
	p := resp.Topics[0].Partitions[0]
	values, _ := decodeValues(rc.t, p.RecordBatches)
	return consumed{code: p.ErrorCode, highWatermark: p.HighWatermark, values: values}
}

// within runs the simulation until cond holds and reports whether it did
// within limit of virtual time.
func (rc *replicationCluster) within(limit time.Duration, cond func() bool) bool {
	rc.t.Helper()
	deadline := rc.sched.Now() + limit
	for !cond() {
		if rc.sched.Now() > deadline {
			return false
		}
		rc.runFor(50 * time.Millisecond)
	}
	return true
}

// runFor runs the simulation for d of virtual time.
func (rc *replicationCluster) runFor(d time.Duration) {
	rc.t.Helper()
	if err := rc.sched.RunFor(d); err != nil {
		rc.t.Fatal(err)
	}
}

// stepUntil runs the simulation one event at a time until cond holds,
// failing after limit of virtual time: for the scenarios that must strike
// between two events.
func (rc *replicationCluster) stepUntil(what string, limit time.Duration, cond func() bool) {
	rc.t.Helper()
	deadline := rc.sched.Now() + limit
	for !cond() {
		if rc.sched.Now() > deadline {
			rc.t.Fatalf("not within %v: %s", limit, what)
		}
		if !rc.sched.Step() {
			rc.t.Fatalf("the simulation ran out of events before: %s", what)
		}
	}
}

// cutOff cuts both directions between n and every other node but the
// client host, which can still reach it.
func (rc *replicationCluster) cutOff(n *simClusterNode) {
	for _, other := range rc.nodes {
		if other != n {
			rc.sched.Network().Partition(n.host, other.host)
		}
	}
}

// cutBetween cuts both directions between two nodes.
func (rc *replicationCluster) cutBetween(a, b *simClusterNode) {
	rc.sched.Network().Partition(a.host, b.host)
}

// healBetween heals both directions between two nodes.
func (rc *replicationCluster) healBetween(a, b *simClusterNode) {
	rc.sched.Network().Heal(a.host, b.host)
	rc.sched.Network().Heal(b.host, a.host)
}

// controllers returns the three controller-only nodes.
func (rc *replicationCluster) controllers() []*simClusterNode { return rc.nodes[:3] }

// highWatermarksAt reports whether every live replica knows a high
// watermark of at least offset.
func (rc *replicationCluster) highWatermarksAt(offset int64) bool {
	for _, id := range []int32{4, 5, 6} {
		if p := rc.local(id); p != nil && p.repl.highWatermark < offset {
			return false
		}
	}
	return true
}

// requireValues fails the test unless got is exactly want.
func requireValues(t testing.TB, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: %q, want %q", what, got, want)
	}
}

// requireReplicasAgree fails the test unless every live replica's log
// holds the same records in the same epochs as broker leader's.
func (rc *replicationCluster) requireReplicasAgree(leader int32) {
	rc.t.Helper()
	want, wantEpochs := rc.logValues(leader)
	for _, id := range []int32{4, 5, 6} {
		if id == leader || rc.local(id) == nil {
			continue
		}
		got, gotEpochs := rc.logValues(id)
		if !slices.Equal(got, want) || !slices.Equal(gotEpochs, wantEpochs) {
			rc.t.Fatalf("replicas diverge: broker %d holds %q (epochs %v), leader %d holds %q (epochs %v)",
				id, got, gotEpochs, leader, want, wantEpochs)
		}
	}
}
