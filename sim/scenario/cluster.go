package scenario

import (
	"fmt"
	"time"

	"github.com/kafkasim/kafkasim/broker"
	"github.com/kafkasim/kafkasim/broker/quorum"
	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/sim"
)

// ClusterSpec is the cluster a run builds. Its zero value is one
// standalone broker, the run every seed made before clusters existed.
type ClusterSpec struct {
	// Nodes is how many nodes run, 3 to 5, or 0 for one standalone broker.
	// Nodes 1 to Voters are voters of the metadata quorum and brokers
	// (process.roles=broker,controller); the rest are brokers only.
	Nodes int
	// Voters is the size of controller.quorum.voters.
	Voters int
	// Separate makes the voters controller-only nodes
	// (process.roles=controller) that serve no client and lead no
	// partition; the brokers are the other nodes, at least one.
	Separate bool `json:",omitempty"`
	// PartitionEvery is the mean time between two network partitions
	// between the nodes (partitions.go); 0 when the fault is off.
	PartitionEvery time.Duration
	// PartitionLengthMax bounds how long one partition lasts.
	PartitionLengthMax time.Duration
	// ReplicationFactor is the replication factor of the workload's topic
	// and of __consumer_offsets: 3, sometimes 2, at most the brokers
	// there are; 0 (a configuration saved before replication) means 1.
	ReplicationFactor int16 `json:",omitempty"`
	// MinInsyncReplicas is the brokers' min.insync.replicas: 2 with three
	// replicas, 1 or 2 with two, 1 with one; 0 means 1.
	MinInsyncReplicas int16 `json:",omitempty"`
	// UncleanElection sets unclean.leader.election.enable on the
	// workload's topic: a partition whose ISR and ELR are all down takes
	// any live replica as leader, and may lose what it lacks
	// (checker/unclean.go scopes that loss).
	UncleanElection bool `json:",omitempty"`
}

// clusterVoters is how many voters a cluster has, as issue 9 asks: the
// quorum of Kafka's default KRaft deployment.
const clusterVoters = 3

// clusterChance is the share of seeds that run a cluster when the fault
// set enables it.
const clusterChance = 0.5

// clusterStreamSalt makes the cluster's random stream differ from the one
// Derive draws everything else from.
const clusterStreamSalt = 0x636c75737465722d

// deriveCluster draws the cluster from its own stream, so that enabling
// clusters leaves every other choice of a seed, and every single-broker
// seed's run, unchanged.
func deriveCluster(seed uint64, faults Faults) ClusterSpec {
	if !faults[FaultCluster] {
		return ClusterSpec{}
	}
	r := core.NewRand(seed ^ clusterStreamSalt)
	if !r.Chance(clusterChance) {
		return ClusterSpec{}
	}
	c := ClusterSpec{Nodes: clusterVoters + r.IntN(3), Voters: clusterVoters}
	if faults[FaultPartition] {
		c.PartitionEvery = time.Duration(1+r.IntN(5)) * time.Second
		c.PartitionLengthMax = time.Duration(1+r.IntN(12)) * time.Second
	}
	// Drawn last, so that the draws above stay what they were.
	if r.Chance(separateChance) {
		c.Separate = true
		c.Nodes = clusterVoters + 1 + r.IntN(3)
	}
	brokers := int16(c.brokerCount())
	c.ReplicationFactor = min(3, brokers)
	if r.Chance(twoReplicasChance) {
		c.ReplicationFactor = min(2, brokers)
	}
	c.MinInsyncReplicas = min(2, c.ReplicationFactor)
	if c.ReplicationFactor == 2 && r.Chance(0.5) {
		c.MinInsyncReplicas = 1
	}
	// Drawn last, so that the draws above stay what they were.
	c.UncleanElection = r.Chance(uncleanChance)
	return c
}

// uncleanChance is the share of cluster seeds whose topic enables unclean
// leader election (issue 10: the promise table covers unclean or not).
const uncleanChance = 0.3

// twoReplicasChance is the share of cluster seeds whose topics have two
// replicas rather than three (issue 10: RF 3, sometimes 2).
const twoReplicasChance = 0.25

// brokerCount is how many of the nodes are brokers.
func (c ClusterSpec) brokerCount() int {
	if c.Separate {
		return c.Nodes - c.Voters
	}
	return c.Nodes
}

// replicationFactor is the topics' replication factor (1 for a single
// broker or a configuration saved before replication).
func (c ClusterSpec) replicationFactor() int16 { return max(c.ReplicationFactor, 1) }

// minInsyncReplicas is the brokers' min.insync.replicas.
func (c ClusterSpec) minInsyncReplicas() int16 { return max(c.MinInsyncReplicas, 1) }

// separateChance is the share of cluster seeds whose voters are
// controller-only nodes (issue 9: combined or separate, per seed).
const separateChance = 0.3

// isBroker reports whether node id serves clients as a broker.
func (c ClusterSpec) isBroker(id int32) bool { return !c.Separate || int(id) > c.Voters }

// lines describes the cluster for Config.Lines.
func (c ClusterSpec) lines() []optionLine {
	return []optionLine{
		{"cluster.nodes", c.Nodes, c.Nodes > 0},
		{"cluster.voters", fmt.Sprintf("%d (broker,controller); the other %d broker only", c.Voters, c.Nodes-c.Voters), c.Nodes > 0 && !c.Separate},
		{"cluster.voters", fmt.Sprintf("%d (controller only); the other %d broker only", c.Voters, c.Nodes-c.Voters), c.Separate},
		{"cluster.replication.factor", c.replicationFactor(), c.Nodes > 0},
		{"cluster.min.insync.replicas", c.minInsyncReplicas(), c.Nodes > 0},
		{"topic.unclean.leader.election.enable", c.UncleanElection, c.UncleanElection},
		{"fault.partition.every", c.PartitionEvery, c.PartitionEvery > 0},
		{"fault.partition.length.max", c.PartitionLengthMax, c.PartitionEvery > 0},
	}
}

// brokerNode is one broker process of the run and the machine it runs
// on: its host, disk and I/O survive the process's crashes.
type brokerNode struct {
	id   int32
	name string
	host *sim.Node
	disk *sim.Disk
	io   *sim.IO
	cfg  broker.Config
	// node is the running process, nil while down.
	node *broker.Node
	down bool
	// running is set while the quorum history has a start of this node
	// without its stop.
	running bool
	// incarnation counts the node's recorded starts.
	incarnation int
	// registeredAfter is the last offset of the committed metadata when
	// the running incarnation started: its registration comes after it.
	registeredAfter int64
	// role is the quorum role the node last recorded, so that a fault can
	// aim at the active controller.
	role  quorumRole
	epoch int32
}

// address is the node's client listener.
func (b *brokerNode) address() string { return b.name + ":9092" }

// clustered reports whether the run is a cluster.
func (r *run) clustered() bool { return r.cfg.Cluster.Nodes > 0 }

// bootstrap is the client listeners every client starts from: every
// broker (a controller-only node has none).
func (r *run) bootstrap() []string {
	var addresses []string
	for _, b := range r.brokers {
		if r.cfg.Cluster.isBroker(b.id) {
			addresses = append(addresses, b.address())
		}
	}
	return addresses
}

// addBrokerNodes adds the host, disk and I/O of every node, in id order:
// one named "broker" for a single-broker run (as before clusters), or b1
// to bN.
func (r *run) addBrokerNodes() {
	count := max(r.cfg.Cluster.Nodes, 1)
	for i := 1; i <= count; i++ {
		name := brokerName
		if r.clustered() {
			name = fmt.Sprintf("b%d", i)
		}
		b := &brokerNode{id: int32(i), name: name}
		b.host = r.sched.AddNode(name, sim.NodeOptions{})
		// One IO for every incarnation: a crash drops the completions
		// pending on the host's clock, so the jobs in flight never ran.
		b.io = sim.NewIO(b.host, r.sched.ForkRand(), r.cfg.IOLatency)
		b.disk = sim.NewDisk(r.sched.ForkRand(), r.cfg.Harsh.diskOptions(sim.DiskOptions{
			TornWriteProbability:   r.cfg.TornWriteChance,
			ReadBitFlipProbability: r.cfg.BitFlipChance,
		}))
		// Bound to its host for crash points; installed as a plain FS so
		// that a process crash keeps the page cache (power loss calls
		// disk.Crash explicitly).
		b.disk.Bind(b.host)
		b.host.SetFS(b.disk)
		b.disk.Stall = b.host.Stall
		r.brokers = append(r.brokers, b)
	}
}

// clusterConfig turns the broker configuration into node b's in a
// cluster: its id, listeners, roles, the quorum's voters, and the
// replication settings (docs/replication.md).
func (r *run) clusterConfig(cfg broker.Config, b *brokerNode) broker.Config {
	if !r.clustered() {
		return cfg
	}
	var voters []quorum.Voter
	for id := 1; id <= r.cfg.Cluster.Voters; id++ {
		voters = append(voters, quorum.Voter{ID: int32(id), Address: fmt.Sprintf("b%d:9093", id)})
	}
	cfg.NodeID = b.id
	cfg.Listeners = []string{b.address()}
	cfg.QuorumVoters = voters
	cfg.ProcessRoles = []string{"broker"}
	cfg.ControllerListeners = nil
	if int(b.id) <= r.cfg.Cluster.Voters {
		cfg.ProcessRoles = []string{"broker", "controller"}
		cfg.ControllerListeners = []string{fmt.Sprintf("b%d:9093", b.id)}
		if r.cfg.Cluster.Separate {
			cfg.ProcessRoles, cfg.Listeners = []string{"controller"}, nil
		}
	}
	cfg.OffsetsTopicReplicationFactor = r.cfg.Cluster.replicationFactor()
	cfg.DefaultReplicationFactor = r.cfg.Cluster.replicationFactor()
	cfg.MinInsyncReplicas = r.cfg.Cluster.minInsyncReplicas()
	// Several __consumer_offsets partitions, so that groups live on
	// different leaders and their coordinators move separately.
	if r.cfg.Cluster.ReplicationFactor > 0 {
		cfg.OffsetsTopicPartitions = clusterOffsetsPartitions
	}
	// Five times the simulated fsync's heavy tail (up to two seconds), so
	// that a slow disk alone does not take a follower out of the ISR.
	cfg.ReplicaLagTimeMaxMs = clusterReplicaLagMs
	// Snapshot the metadata log every few entries (a run commits 15 to
	// 30), so that snapshots, log truncation and FetchSnapshot happen
	// under the faults and the quorum checker sees them.
	cfg.MetadataSnapshotBytes = clusterSnapshotBytes
	return cfg
}

// clusterOffsetsPartitions is offsets.topic.num.partitions in cluster runs.
const clusterOffsetsPartitions = 3

// clusterReplicaLagMs is replica.lag.time.max.ms in cluster runs.
const clusterReplicaLagMs = 10_000

// pickBroker draws the node a fault strikes. A single-broker run draws
// nothing, so that its random stream is the one it always was.
func (r *run) pickBroker() *brokerNode {
	if len(r.brokers) == 1 {
		return r.brokers[0]
	}
	return r.brokers[r.rand.IntN(len(r.brokers))]
}

// stalling reports whether some node's disk stalls (stallThenPowerLoss).
func (r *run) stalling() bool {
	for _, b := range r.brokers {
		if b.io.Stalling() {
			return true
		}
	}
	return false
}

// anyDown reports whether some node is down.
func (r *run) anyDown() bool {
	for _, b := range r.brokers {
		if b.down {
			return true
		}
	}
	return false
}

// clusterSnapshotBytes is the metadata snapshot interval of cluster runs,
// in bytes of committed records: a few entries.
const clusterSnapshotBytes = 256
