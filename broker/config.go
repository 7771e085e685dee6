package broker

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kafkasim/kafkasim/broker/quorum"
	"github.com/kafkasim/kafkasim/core/record"
)

// ErrConfig marks an invalid or unknown configuration setting.
var ErrConfig = errors.New("invalid configuration")

// Config is a broker's configuration. Each field names the Kafka setting it
// mirrors; ParseProperties reads them from a server.properties file.
type Config struct {
	// NodeID identifies the broker in the cluster (node.id, or broker.id).
	NodeID int32
	// ClusterID names the cluster in Metadata responses (cluster.id).
	ClusterID string
	// Listeners are the addresses the broker binds, "host:port"
	// (listeners=PLAINTEXT://127.0.0.1:9092).
	Listeners []string
	// AdvertisedListeners are the addresses clients are told to use
	// (advertised.listeners); empty means Listeners.
	AdvertisedListeners []string
	// ProcessRoles are this node's roles (process.roles): "broker" and,
	// on a node that is one of the controller quorum's voters,
	// "controller".
	ProcessRoles []string
	// QuorumVoters are the controller quorum's voters
	// (controller.quorum.voters, "id@host:port,..."). With voters the node
	// runs in cluster mode: the metadata log, replicated by the quorum, is
	// the truth about brokers and topics (docs/cluster.md). Without them
	// the node is a standalone broker that is its own controller.
	QuorumVoters []quorum.Voter
	// ControllerListeners are the addresses of the listeners named in
	// controller.listener.names, served on a controller node for the
	// quorum's and the controller's requests.
	ControllerListeners []string
	// QuorumElectionTimeoutMs, QuorumFetchTimeoutMs and
	// QuorumRequestTimeoutMs are the metadata quorum's timeouts
	// (controller.quorum.election.timeout.ms, .fetch.timeout.ms,
	// .request.timeout.ms).
	QuorumElectionTimeoutMs int64
	QuorumFetchTimeoutMs    int64
	QuorumRequestTimeoutMs  int64
	// BrokerSessionTimeoutMs fences a broker whose heartbeats stopped for
	// this long (broker.session.timeout.ms); BrokerHeartbeatIntervalMs is
	// how often a broker sends one (broker.heartbeat.interval.ms).
	BrokerSessionTimeoutMs    int64
	BrokerHeartbeatIntervalMs int64
	// AutoLeaderRebalance moves leaderships back to preferred replicas
	// every LeaderImbalanceCheckIntervalMs (auto.leader.rebalance.enable,
	// leader.imbalance.check.interval.seconds).
	AutoLeaderRebalance            bool
	LeaderImbalanceCheckIntervalMs int64
	// MetadataSnapshotBytes is how many bytes of metadata records a node
	// commits between two snapshots of its metadata image
	// (metadata.log.max.record.bytes.between.snapshots; Kafka's default is
	// 20 MiB, ours 1 MiB, since our records are few and small).
	MetadataSnapshotBytes int64
	// OffsetsTopicReplicationFactor is the replication factor of
	// __consumer_offsets in cluster mode (offsets.topic.replication.factor),
	// 3 as in Kafka.
	OffsetsTopicReplicationFactor int16

	// LogDir is the data directory, relative to the node's FS root
	// (log.dirs; only one directory is supported).
	LogDir string

	// NumPartitions is the partition count of auto-created topics and of
	// CreateTopics requests that leave it to the broker (num.partitions).
	NumPartitions int32
	// DefaultReplicationFactor is the replication factor used when a request
	// leaves it to the broker (default.replication.factor).
	DefaultReplicationFactor int16
	// MinInsyncReplicas is the smallest ISR that accepts acks=all writes
	// (min.insync.replicas).
	MinInsyncReplicas int16
	// AutoCreateTopics creates unknown topics on Metadata and Produce
	// (auto.create.topics.enable).
	AutoCreateTopics bool
	// UncleanLeaderElection lets an out-of-sync replica become leader
	// (unclean.leader.election.enable).
	UncleanLeaderElection bool

	// MessageBytesMax bounds one record batch (message.max.bytes).
	MessageBytesMax int32
	// RequestBytesMax bounds one request frame (socket.request.max.bytes).
	RequestBytesMax int32

	// SegmentBytes rolls a segment at this size (log.segment.bytes).
	SegmentBytes int64
	// SegmentMs rolls a segment at this age (log.roll.ms / log.roll.hours).
	SegmentMs int64
	// RetentionMs deletes segments older than this; -1 keeps them
	// (log.retention.ms / .minutes / .hours).
	RetentionMs int64
	// RetentionBytes deletes old segments while a partition is larger;
	// -1 is unlimited (log.retention.bytes).
	RetentionBytes int64
	// RetentionCheckIntervalMs is how often retention runs
	// (log.retention.check.interval.ms).
	RetentionCheckIntervalMs int64
	// WriteCaching selects caching mode (log.write.caching, default false):
	// the high watermark is the written log end, so acks=all is answered
	// before the group commit's fsync, and a power loss may take
	// acknowledged and consumed records. The default, durable mode, makes
	// the high watermark the durable end (docs/durability.md).
	WriteCaching bool
	// RecoveryPointCheckpointIntervalMs is how often each partition's
	// recovery point is checkpointed when it moved
	// (log.flush.offset.checkpoint.interval.ms). Recovery reads only what
	// lies after the checkpoint, and judges a bad batch there a torn tail,
	// so the interval bounds how much synced data a restart re-reads and
	// how far back a corruption at rest can pass for a torn write. Kafka's
	// default is 60000; ours is 1000 because of the second reason.
	RecoveryPointCheckpointIntervalMs int64
	// ProducerIDExpirationMs forgets an idempotent producer's state once its
	// newest batch is this old (producer.id.expiration.ms, KIP-854; Kafka's
	// default, a day). A retry after that may be stored twice.
	ProducerIDExpirationMs int64
	// FlushIntervalMessages syncs a partition after this many records
	// (log.flush.interval.messages); 1 syncs before every acknowledgement.
	FlushIntervalMessages int64
	// FlushIntervalMs syncs every partition at least this often
	// (log.flush.interval.ms); -1 disables the timer.
	FlushIntervalMs int64

	// ReplicaLagTimeMaxMs removes a follower from the ISR after this long
	// without catching up (replica.lag.time.max.ms).
	ReplicaLagTimeMaxMs int64
	// A follower's Fetch waits at most ReplicaFetchWaitMaxMs at the
	// leader for data (replica.fetch.wait.max.ms), asks for at most
	// ReplicaFetchMaxBytes per partition (replica.fetch.max.bytes) and
	// ReplicaFetchResponseMaxBytes in all
	// (replica.fetch.response.max.bytes), and after a failed Fetch waits
	// ReplicaFetchBackoffMs before the next (replica.fetch.backoff.ms).
	ReplicaFetchWaitMaxMs        int64
	ReplicaFetchMaxBytes         int64
	ReplicaFetchResponseMaxBytes int64
	ReplicaFetchBackoffMs        int64

	// GroupInitialRebalanceDelayMs delays the first rebalance of an empty
	// group so that more members can join (group.initial.rebalance.delay.ms).
	GroupInitialRebalanceDelayMs int64
	// GroupMinSessionTimeoutMs and GroupMaxSessionTimeoutMs bound the
	// session timeouts consumers may ask for.
	GroupMinSessionTimeoutMs int64
	GroupMaxSessionTimeoutMs int64
	// OffsetsTopicPartitions is the partition count of __consumer_offsets
	// (offsets.topic.num.partitions).
	OffsetsTopicPartitions int32

	// ConnectionsMaxIdleMs closes a client connection that had no request
	// in progress and no traffic for this long (connections.max.idle.ms,
	// Kafka's default 600000); -1 never closes one.
	ConnectionsMaxIdleMs int64
	// ConnectionsMax bounds the client connections open at once; one more
	// is closed as it is accepted (max.connections; Kafka's default, the
	// largest int32, is in effect unlimited).
	ConnectionsMax int32
	// ConnectionsPerAddressMax bounds the connections open at once from
	// one client address (max.connections.per.ip, default unlimited).
	ConnectionsPerAddressMax int32
	// MetricsListener is the "host:port" of the Prometheus /metrics and
	// /health endpoint served by cmd/broker (metrics.listener, default
	// 127.0.0.1:9644); empty disables it. The node itself never binds it.
	MetricsListener string
}

// MetricsListenerDefault is where cmd/broker serves /metrics and /health
// unless metrics.listener says otherwise: loopback, so that a default start
// exposes nothing to the network, on the port Redpanda's admin API (which
// serves its metrics) uses, clear of Kafka's 9092.
const MetricsListenerDefault = "127.0.0.1:9644"

// DefaultConfig returns the embedded defaults: a single node on
// 127.0.0.1:9092 with its data under "data". Durations and sizes are
// Kafka's defaults.
func DefaultConfig() Config {
	const hourMs = 60 * 60 * 1000
	return Config{
		NodeID:                            1,
		ClusterID:                         "kafkasim",
		Listeners:                         []string{"127.0.0.1:9092"},
		LogDir:                            "data",
		NumPartitions:                     1,
		DefaultReplicationFactor:          1,
		MinInsyncReplicas:                 1,
		AutoCreateTopics:                  true,
		MessageBytesMax:                   1048588,
		RequestBytesMax:                   100 << 20,
		SegmentBytes:                      1 << 30,
		SegmentMs:                         7 * 24 * hourMs,
		RetentionMs:                       7 * 24 * hourMs,
		RetentionBytes:                    -1,
		RetentionCheckIntervalMs:          5 * 60 * 1000,
		FlushIntervalMessages:             math.MaxInt64,
		RecoveryPointCheckpointIntervalMs: 1000,
		ProducerIDExpirationMs:            producerIDExpirationMsDefault,
		FlushIntervalMs:                   -1,
		ReplicaLagTimeMaxMs:               30_000,
		ReplicaFetchWaitMaxMs:             500,
		ReplicaFetchMaxBytes:              1 << 20,
		ReplicaFetchResponseMaxBytes:      10 << 20,
		ReplicaFetchBackoffMs:             1000,
		GroupInitialRebalanceDelayMs:      3000,
		GroupMinSessionTimeoutMs:          6000,
		GroupMaxSessionTimeoutMs:          30 * 60 * 1000,
		OffsetsTopicPartitions:            1,
		QuorumElectionTimeoutMs:           1000,
		QuorumFetchTimeoutMs:              2000,
		QuorumRequestTimeoutMs:            2000,
		BrokerSessionTimeoutMs:            9000,
		BrokerHeartbeatIntervalMs:         2000,
		AutoLeaderRebalance:               true,
		LeaderImbalanceCheckIntervalMs:    300_000,
		OffsetsTopicReplicationFactor:     3,
		MetadataSnapshotBytes:             1 << 20,
		ConnectionsMaxIdleMs:              10 * 60 * 1000,
		ConnectionsMax:                    math.MaxInt32,
		ConnectionsPerAddressMax:          math.MaxInt32,
		MetricsListener:                   MetricsListenerDefault,
	}
}

// property parses one setting's value into a Config.
type property func(c *Config, value string) error

func intProperty(low, high int64, set func(*Config, int64)) func(*Config, string) error {
	return func(c *Config, value string) error {
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", value)
		}
		if n < low || n > high {
			return fmt.Errorf("%d is outside [%d, %d]", n, low, high)
		}
		set(c, n)
		return nil
	}
}

func boolProperty(set func(*Config, bool)) func(*Config, string) error {
	return func(c *Config, value string) error {
		switch strings.ToLower(value) {
		case "true":
			set(c, true)
		case "false":
			set(c, false)
		default:
			return fmt.Errorf("%q is not true or false", value)
		}
		return nil
	}
}

func durationProperty(unitMs int64, low int64, set func(*Config, int64)) func(*Config, string) error {
	return intProperty(low, math.MaxInt64/unitMs, func(c *Config, n int64) {
		if n < 0 {
			set(c, n) // -1 means "unlimited" whatever the unit
			return
		}
		set(c, n*unitMs)
	})
}

// properties lists every setting the broker understands. Anything else in a
// configuration file is rejected, so that a typo cannot silently fall back
// to a default.
var properties = map[string]property{
	"node.id":   intProperty(0, math.MaxInt32, func(c *Config, n int64) { c.NodeID = int32(n) }),
	"broker.id": intProperty(0, math.MaxInt32, func(c *Config, n int64) { c.NodeID = int32(n) }),
	"cluster.id": func(c *Config, v string) error {
		if v == "" {
			return errors.New("must not be empty")
		}
		c.ClusterID = v
		return nil
	},
	"log.dirs": logDirProperty,
	"log.dir":  logDirProperty,
	"num.partitions": intProperty(1, partitionsPerTopicMax, func(c *Config, n int64) {
		c.NumPartitions = int32(n)
	}),
	"default.replication.factor": intProperty(1, replicationFactorMax, func(c *Config, n int64) {
		c.DefaultReplicationFactor = int16(n)
	}),
	"min.insync.replicas": intProperty(1, replicationFactorMax, func(c *Config, n int64) {
		c.MinInsyncReplicas = int16(n)
	}),
	"auto.create.topics.enable":      boolProperty(func(c *Config, b bool) { c.AutoCreateTopics = b }),
	"unclean.leader.election.enable": boolProperty(func(c *Config, b bool) { c.UncleanLeaderElection = b }),
	"message.max.bytes": intProperty(0, math.MaxInt32, func(c *Config, n int64) {
		c.MessageBytesMax = int32(n)
	}),
	"socket.request.max.bytes": intProperty(1024, math.MaxInt32, func(c *Config, n int64) {
		c.RequestBytesMax = int32(n)
	}),
	"log.segment.bytes":               intProperty(record.HeaderBytes, math.MaxInt32, func(c *Config, n int64) { c.SegmentBytes = n }),
	"log.roll.ms":                     durationProperty(1, 1, func(c *Config, n int64) { c.SegmentMs = n }),
	"log.roll.hours":                  durationProperty(3_600_000, 1, func(c *Config, n int64) { c.SegmentMs = n }),
	"log.retention.ms":                durationProperty(1, -1, func(c *Config, n int64) { c.RetentionMs = n }),
	"log.retention.minutes":           durationProperty(60_000, -1, func(c *Config, n int64) { c.RetentionMs = n }),
	"log.retention.hours":             durationProperty(3_600_000, -1, func(c *Config, n int64) { c.RetentionMs = n }),
	"log.retention.bytes":             intProperty(-1, math.MaxInt64, func(c *Config, n int64) { c.RetentionBytes = n }),
	"log.retention.check.interval.ms": intProperty(1, math.MaxInt64, func(c *Config, n int64) { c.RetentionCheckIntervalMs = n }),
	"log.write.caching":               boolProperty(func(c *Config, b bool) { c.WriteCaching = b }),
	"log.flush.interval.messages":     intProperty(1, math.MaxInt64, func(c *Config, n int64) { c.FlushIntervalMessages = n }),
	"producer.id.expiration.ms":       intProperty(1, math.MaxInt32, func(c *Config, n int64) { c.ProducerIDExpirationMs = n }),
	"log.flush.offset.checkpoint.interval.ms": intProperty(1, math.MaxInt32, func(c *Config, n int64) {
		c.RecoveryPointCheckpointIntervalMs = n
	}),
	"log.flush.interval.ms":     intProperty(-1, math.MaxInt64, func(c *Config, n int64) { c.FlushIntervalMs = n }),
	"replica.lag.time.max.ms":   intProperty(1, math.MaxInt64, func(c *Config, n int64) { c.ReplicaLagTimeMaxMs = n }),
	"replica.fetch.wait.max.ms": intProperty(0, math.MaxInt32, func(c *Config, n int64) { c.ReplicaFetchWaitMaxMs = n }),
	"replica.fetch.max.bytes":   intProperty(1, math.MaxInt32, func(c *Config, n int64) { c.ReplicaFetchMaxBytes = n }),
	"replica.fetch.response.max.bytes": intProperty(1, math.MaxInt32, func(c *Config, n int64) {
		c.ReplicaFetchResponseMaxBytes = n
	}),
	"replica.fetch.backoff.ms": intProperty(0, math.MaxInt32, func(c *Config, n int64) { c.ReplicaFetchBackoffMs = n }),
	"group.initial.rebalance.delay.ms": intProperty(0, math.MaxInt32, func(c *Config, n int64) {
		c.GroupInitialRebalanceDelayMs = n
	}),
	"group.min.session.timeout.ms": intProperty(1, math.MaxInt32, func(c *Config, n int64) { c.GroupMinSessionTimeoutMs = n }),
	"group.max.session.timeout.ms": intProperty(1, math.MaxInt32, func(c *Config, n int64) { c.GroupMaxSessionTimeoutMs = n }),
	"offsets.topic.num.partitions": intProperty(1, partitionsPerTopicMax, func(c *Config, n int64) {
		c.OffsetsTopicPartitions = int32(n)
	}),
	"connections.max.idle.ms": connectionsMaxIdleProperty,
	"max.connections":         intProperty(1, math.MaxInt32, func(c *Config, n int64) { c.ConnectionsMax = int32(n) }),
	"max.connections.per.ip":  intProperty(1, math.MaxInt32, func(c *Config, n int64) { c.ConnectionsPerAddressMax = int32(n) }),
	"metrics.listener":        metricsListenerProperty,
	"controller.quorum.voters": func(c *Config, v string) error {
		voters, err := quorum.ParseVoters(v)
		c.QuorumVoters = voters
		return err
	},
	"controller.quorum.election.timeout.ms": intProperty(1, math.MaxInt32, func(c *Config, n int64) { c.QuorumElectionTimeoutMs = n }),
	"controller.quorum.fetch.timeout.ms":    intProperty(1, math.MaxInt32, func(c *Config, n int64) { c.QuorumFetchTimeoutMs = n }),
	"controller.quorum.request.timeout.ms":  intProperty(1, math.MaxInt32, func(c *Config, n int64) { c.QuorumRequestTimeoutMs = n }),
	"broker.session.timeout.ms":             intProperty(1, math.MaxInt32, func(c *Config, n int64) { c.BrokerSessionTimeoutMs = n }),
	"broker.heartbeat.interval.ms":          intProperty(1, math.MaxInt32, func(c *Config, n int64) { c.BrokerHeartbeatIntervalMs = n }),
	"auto.leader.rebalance.enable":          boolProperty(func(c *Config, b bool) { c.AutoLeaderRebalance = b }),
	"leader.imbalance.check.interval.seconds": intProperty(1, math.MaxInt32, func(c *Config, n int64) {
		c.LeaderImbalanceCheckIntervalMs = n * 1000
	}),
	"metadata.log.max.record.bytes.between.snapshots": intProperty(1, math.MaxInt64, func(c *Config, n int64) {
		c.MetadataSnapshotBytes = n
	}),
	"offsets.topic.replication.factor": intProperty(1, replicationFactorMax, func(c *Config, n int64) {
		c.OffsetsTopicReplicationFactor = int16(n)
	}),
	processRolesKey: processRolesProperty,
}

// processRolesProperty reads process.roles: "broker", "controller" (a
// controller-only node, which serves no clients), or "broker,controller"
// for a combined node.
func processRolesProperty(c *Config, value string) error {
	roles := splitList(value)
	if len(roles) == 0 {
		return errors.New("is empty; want broker, controller or broker,controller")
	}
	for _, role := range roles {
		if role != roleBroker && role != roleController {
			return fmt.Errorf("unknown role %q; want broker, controller or broker,controller", role)
		}
	}
	c.ProcessRoles = roles
	return nil
}

// The roles of process.roles.
const (
	roleBroker     = "broker"
	roleController = "controller"
)

// IsBroker reports whether the node serves clients: process.roles names
// the broker, or is unset (a standalone broker).
func (c *Config) IsBroker() bool {
	return len(c.ProcessRoles) == 0 || slices.Contains(c.ProcessRoles, roleBroker)
}

// IsController reports whether process.roles names the controller role.
func (c *Config) IsController() bool { return slices.Contains(c.ProcessRoles, roleController) }

// ClusterMode reports whether the node runs with a controller quorum.
func (c *Config) ClusterMode() bool { return len(c.QuorumVoters) > 0 }

// connectionsMaxIdleProperty reads connections.max.idle.ms: a positive
// number of milliseconds, or -1 to keep idle connections open.
func connectionsMaxIdleProperty(c *Config, value string) error {
	if value == "0" {
		return errors.New("0 would close every connection at once; use -1 to keep idle connections open")
	}
	return intProperty(-1, math.MaxInt64/int64(time.Millisecond), func(c *Config, n int64) {
		c.ConnectionsMaxIdleMs = n
	})(c, value)
}

// metricsListenerProperty reads metrics.listener: "host:port", or empty to
// serve no metrics. The address is checked when cmd/broker binds it.
func metricsListenerProperty(c *Config, value string) error {
	if value != "" && !strings.Contains(value, ":") {
		return fmt.Errorf("%q is not host:port (empty disables the metrics listener)", value)
	}
	c.MetricsListener = value
	return nil
}

// Bounds on topic shapes, so that one request cannot ask for unbounded
// files and memory.
const (
	partitionsPerTopicMax = 10_000
	replicationFactorMax  = 16
)

func logDirProperty(c *Config, value string) error {
	if strings.Contains(value, ",") {
		return errors.New("only one log directory is supported")
	}
	if value == "" {
		return errors.New("must not be empty")
	}
	c.LogDir = value
	return nil
}

// Validate checks the relations between settings.
func (c Config) Validate() error {
	switch {
	case len(c.Listeners) == 0 && c.IsBroker():
		return fmt.Errorf("%w: listeners: no listener given", ErrConfig)
	case !c.IsBroker() && !c.ClusterMode():
		return fmt.Errorf("%w: process.roles=controller needs controller.quorum.voters", ErrConfig)
	case c.MinInsyncReplicas > c.DefaultReplicationFactor && c.DefaultReplicationFactor > 1:
		return fmt.Errorf("%w: min.insync.replicas %d exceeds default.replication.factor %d",
			ErrConfig, c.MinInsyncReplicas, c.DefaultReplicationFactor)
	case c.GroupMinSessionTimeoutMs > c.GroupMaxSessionTimeoutMs:
		return fmt.Errorf("%w: group.min.session.timeout.ms %d exceeds group.max.session.timeout.ms %d",
			ErrConfig, c.GroupMinSessionTimeoutMs, c.GroupMaxSessionTimeoutMs)
	case c.ConnectionsMaxIdleMs == 0 || c.ConnectionsMaxIdleMs < -1:
		return fmt.Errorf("%w: connections.max.idle.ms %d is neither positive nor -1", ErrConfig, c.ConnectionsMaxIdleMs)
	case c.ConnectionsMax < 1 || c.ConnectionsPerAddressMax < 1:
		return fmt.Errorf("%w: max.connections %d and max.connections.per.ip %d must be positive",
			ErrConfig, c.ConnectionsMax, c.ConnectionsPerAddressMax)
	case int64(c.MessageBytesMax) > int64(c.RequestBytesMax):
		return fmt.Errorf("%w: message.max.bytes %d exceeds socket.request.max.bytes %d",
			ErrConfig, c.MessageBytesMax, c.RequestBytesMax)
	}
	return c.validateCluster()
}

// validateCluster checks the settings of cluster mode against each other.
func (c Config) validateCluster() error {
	if !c.ClusterMode() {
		return nil
	}
	voter := slices.ContainsFunc(c.QuorumVoters, func(v quorum.Voter) bool { return v.ID == c.NodeID })
	switch {
	case len(c.ProcessRoles) == 0:
		return fmt.Errorf("%w: controller.quorum.voters is set but process.roles is not; use process.roles=broker,controller on a voter, broker on any other node", ErrConfig)
	case c.IsController() && !voter:
		return fmt.Errorf("%w: process.roles names the controller but node.id %d is not in controller.quorum.voters", ErrConfig, c.NodeID)
	case !c.IsController() && voter:
		return fmt.Errorf("%w: node.id %d is in controller.quorum.voters but process.roles does not name the controller", ErrConfig, c.NodeID)
	case c.IsController() && len(c.ControllerListeners) == 0:
		return fmt.Errorf("%w: a controller needs a listener named in controller.listener.names (listeners=PLAINTEXT://:9092,CONTROLLER://:9093 and controller.listener.names=CONTROLLER)", ErrConfig)
	case c.BrokerHeartbeatIntervalMs >= c.BrokerSessionTimeoutMs:
		return fmt.Errorf("%w: broker.heartbeat.interval.ms %d must be below broker.session.timeout.ms %d", ErrConfig, c.BrokerHeartbeatIntervalMs, c.BrokerSessionTimeoutMs)
	}
	return nil
}

// advertised returns the addresses clients should use.
func (c Config) advertised() []string {
	if len(c.AdvertisedListeners) > 0 {
		return c.AdvertisedListeners
	}
	return c.Listeners
}

// retentionCheckInterval is RetentionCheckIntervalMs as a duration.
func (c Config) retentionCheckInterval() time.Duration {
	return time.Duration(c.RetentionCheckIntervalMs) * time.Millisecond
}

// Settings that shape the listeners are read together once the whole file
// is known, because a listener's security protocol may be named by a later
// line (listener.security.protocol.map, controller.listener.names).
const (
	listenersKey           = "listeners"
	advertisedListenersKey = "advertised.listeners"
	protocolMapKey         = "listener.security.protocol.map"
	controllerListenersKey = "controller.listener.names"
	processRolesKey        = "process.roles"
	zooKeeperPrefix        = "zookeeper."
	plaintextProtocol      = "PLAINTEXT"
	// controllerListenerName is the name Kafka's files give the controller's
	// listener; it is taken for one even when controller.listener.names is
	// missing, so it is never served to clients by accident.
	controllerListenerName = "CONTROLLER"
)

// Bounds on what a configuration error says.
const (
	// suggestionDistanceMax is the largest edit distance between an unknown
	// key and a "did you mean" suggestion; a suggestion must also differ
	// from the key in less than a third of its length.
	suggestionDistanceMax = 3
	// problemsListedMax bounds the problems one error lists; the rest are
	// counted.
	problemsListedMax = 50
)

// listenerSettings are the Kafka settings that parseListenerSettings reads
// after every other line.
var listenerSettings = map[string]bool{
	listenersKey: true, advertisedListenersKey: true, protocolMapKey: true, controllerListenersKey: true,
}

// kafkaSettingsIgnored lists settings that Apache Kafka's brokers know and
// that have no effect here (threads, socket buffers, security, the
// controller quorum, transactions, tiered storage, quotas, ...). A Kafka
// server.properties names many of them, so they are accepted with one
// warning that lists them, rather than rejected one at a time. The names
// come from Kafka 3.9's broker configuration classes (KafkaConfig,
// ServerConfigs, ServerLogConfigs, SocketServerConfigs, ReplicationConfigs,
// KRaftConfigs, QuorumConfig, GroupCoordinatorConfig, TransactionLogConfigs,
// CleanerConfig, QuotaConfigs, MetricConfigs, BrokerSecurityConfigs); the
// prefixes below cover families such as the share-group settings of Kafka 4.
var kafkaSettingsIgnored = map[string]bool{
	"advertised.host.name": true, "advertised.port": true, "allow.everyone.if.no.acl.found": true,
	"alter.config.policy.class.name": true, "alter.log.dirs.replication.quota.window.num": true,
	"alter.log.dirs.replication.quota.window.size.seconds": true, "authorizer.class.name": true,
	"auto.include.jmx.reporter": true, "background.threads": true,
	"broker.id.generation.enable": true, "broker.rack": true,
	"client.quota.callback.class": true, "compression.gzip.level": true,
	"compression.lz4.level": true, "compression.type": true, "compression.zstd.level": true,
	"connection.failed.authentication.delay.ms": true,
	"connections.max.reauth.ms":                 true, "control.plane.listener.name": true, "controlled.shutdown.enable": true,
	"controlled.shutdown.max.retries": true, "controlled.shutdown.retry.backoff.ms": true,
	"controller.quota.window.num": true, "controller.quota.window.size.seconds": true,
	"controller.socket.timeout.ms": true, "create.topic.policy.class.name": true,
	"delete.records.purgatory.purge.interval.requests": true, "delete.topic.enable": true,
	"early.start.listeners": true, "eligible.leader.replicas.enable": true, "fetch.max.bytes": true,
	"fetch.purgatory.purge.interval.requests": true, "follower.replication.throttled.rate": true,
	"follower.replication.throttled.replicas": true, "group.coordinator.append.linger.ms": true,
	"group.coordinator.new.enable": true, "group.coordinator.rebalance.protocols": true,
	"group.coordinator.threads": true, "group.max.size": true, "initial.broker.registration.timeout.ms": true,
	"inter.broker.listener.name": true, "inter.broker.protocol.version": true,
	"kafka.metrics.polling.interval.secs": true, "kafka.metrics.reporters": true,
	"leader.imbalance.per.broker.percentage": true,
	"leader.replication.throttled.rate":      true, "leader.replication.throttled.replicas": true,
	"log.cleanup.policy": true, "log.dir.failure.timeout.ms": true,
	"log.flush.scheduler.interval.ms": true, "log.flush.start.offset.checkpoint.interval.ms": true,
	"log.index.interval.bytes": true, "log.index.size.max.bytes": true, "log.initial.task.delay.ms": true,
	"log.local.retention.bytes": true, "log.local.retention.ms": true, "log.message.downconversion.enable": true,
	"log.message.format.version": true, "log.message.timestamp.after.max.ms": true,
	"log.message.timestamp.before.max.ms": true, "log.message.timestamp.difference.max.ms": true,
	"log.message.timestamp.type": true, "log.preallocate": true, "log.roll.jitter.hours": true,
	"log.roll.jitter.ms": true, "log.segment.delete.delay.ms": true, "max.connection.creation.rate": true,
	"max.connections.per.ip.overrides":          true,
	"max.incremental.fetch.session.cache.slots": true, "max.request.partition.size.limit": true,
	"metric.reporters": true, "metrics.num.samples": true, "metrics.recording.level": true,
	"metrics.sample.window.ms": true, "num.io.threads": true, "num.network.threads": true,
	"num.recovery.threads.per.data.dir": true, "num.replica.alter.log.dirs.threads": true,
	"num.replica.fetchers": true, "offset.metadata.max.bytes": true, "offsets.commit.required.acks": true,
	"offsets.commit.timeout.ms": true, "offsets.load.buffer.size": true, "offsets.retention.check.interval.ms": true,
	"offsets.retention.minutes": true, "offsets.topic.compression.codec": true, "offsets.topic.min.isr": true,
	"offsets.topic.segment.bytes": true, "port": true,
	"host.name": true, "principal.builder.class": true, "producer.id.expiration.check.interval.ms": true,
	"producer.purgatory.purge.interval.requests": true, "queued.max.request.bytes": true,
	"queued.max.requests": true, "quota.window.num": true, "quota.window.size.seconds": true,
	"remote.fetch.max.wait.ms": true, "replica.alter.log.dirs.io.max.bytes.per.second": true,
	"replica.fetch.min.bytes":                       true,
	"replica.high.watermark.checkpoint.interval.ms": true, "replica.selector.class": true,
	"replica.socket.receive.buffer.bytes": true, "replica.socket.timeout.ms": true,
	"replication.quota.window.num": true, "replication.quota.window.size.seconds": true,
	"request.timeout.ms": true, "reserved.broker.max.id": true, "security.inter.broker.protocol": true,
	"security.providers": true, "server.max.startup.time.ms": true, "socket.connection.setup.timeout.max.ms": true,
	"socket.connection.setup.timeout.ms": true, "socket.listen.backlog.size": true,
	"socket.receive.buffer.bytes": true, "socket.send.buffer.bytes": true, "super.users": true,
	"telemetry.max.bytes": true, "transactional.id.expiration.ms": true,
	"unclean.leader.election.interval.ms": true, "unstable.api.versions.enable": true,
	"unstable.feature.versions.enable": true,
}

// kafkaPrefixesIgnored are families of Kafka settings with no effect here,
// accepted (and listed in the warning) whatever follows the prefix: per
// listener overrides, TLS and SASL, the controller quorum, the metadata
// log, transactions, share groups, the new consumer group protocol, log
// compaction and tiered storage. None of them shares a prefix with a
// setting this broker implements, so a typo in an implemented setting is
// never taken for one of them.
var kafkaPrefixesIgnored = []string{
	"controller.quorum.bootstrap.", "controller.quorum.retry.", "controller.quorum.append.",
	"controller.quorum.auto.", "delegation.token.", "group.consumer.", "group.share.", "listener.name.",
	"log.cleaner.", "metadata.log.dir", "metadata.log.max.snapshot.", "metadata.log.segment.", "metadata.max.", "password.encoder.", "remote.log.", "sasl.", "share.coordinator.",
	"ssl.", "transaction.",
}

// isKafkaSettingIgnored reports whether key is a Kafka broker setting that
// has no effect here.
func isKafkaSettingIgnored(key string) bool {
	if kafkaSettingsIgnored[key] {
		return true
	}
	for _, prefix := range kafkaPrefixesIgnored {
		if strings.HasPrefix(key, prefix) {
			return true
		}
	}
	return false
}

// propertyLine is one key=value setting and the line it starts on.
type propertyLine struct {
	key, value string
	line       int
}

// parseState collects what reading a file found: every problem (so that a
// file is fixed in one round, not one error per run), the ignored Kafka
// settings, and the warnings.
type parseState struct {
	config   Config
	problems []configProblem
	ignored  []string
	warnings []string
	settings map[string]propertyLine // the listener-shaping settings, read last
	zoo      []propertyLine
}

// configProblem is one mistake in a configuration file.
type configProblem struct {
	line int
	text string
}

func (s *parseState) problem(line int, format string, args ...any) {
	s.problems = append(s.problems, configProblem{line, fmt.Sprintf(format, args...)})
}

// ParseProperties reads a server.properties file (Java properties syntax:
// key=value or key: value, # and ! comments, trailing-backslash line
// continuation) on top of base. It returns the configuration and warnings
// for the operator: one line listing the Kafka settings that have no effect
// here, and one per listener that is not served. Every problem in the file
// is reported at once, in one ErrConfig error with a line per problem:
// unknown keys (with a "did you mean" suggestion when a known key is
// close), invalid values, keys set twice, and ZooKeeper settings. On error
// the base config is returned untouched.
func ParseProperties(base Config, text string) (Config, []string, error) {
	lines, problems := splitProperties(text)
	s := &parseState{config: base, problems: problems, settings: map[string]propertyLine{}}
	firstLine := map[string]int{}
	for _, p := range lines {
		if first, seen := firstLine[p.key]; seen {
			s.problem(p.line, "%s is set twice (lines %d and %d); keep one", p.key, first, p.line)
			continue
		}
		firstLine[p.key] = p.line
		s.apply(p)
	}
	s.checkZooKeeper()
	s.checkNodeIDs()
	s.parseListenerSettings()
	if len(s.ignored) > 0 {
		noun := "settings"
		if len(s.ignored) == 1 {
			noun = "setting"
		}
		s.warnings = append([]string{fmt.Sprintf("ignoring %d Kafka %s that have no effect in kafkasim: %s",
			len(s.ignored), noun, strings.Join(s.ignored, ", "))}, s.warnings...)
	}
	if len(s.problems) > 0 {
		return base, nil, problemsError(s.problems)
	}
	if err := s.config.Validate(); err != nil {
		return base, nil, err
	}
	return s.config, s.warnings, nil
}

// problemsError joins problems into one ErrConfig, in line order: on one
// line when there is one, otherwise a count and one indented line each.
func problemsError(found []configProblem) error {
	sort.SliceStable(found, func(i, j int) bool { return found[i].line < found[j].line })
	problems := make([]string, len(found))
	for i, p := range found {
		problems[i] = fmt.Sprintf("line %d: %s", p.line, p.text)
	}
	if len(problems) == 1 {
		return fmt.Errorf("%w: %s", ErrConfig, problems[0])
	}
	shown := problems
	if len(shown) > problemsListedMax {
		shown = shown[:problemsListedMax]
	}
	text := fmt.Sprintf("%d problems:\n  %s", len(problems), strings.Join(shown, "\n  "))
	if len(shown) < len(problems) {
		text += fmt.Sprintf("\n  ... and %d more", len(problems)-len(shown))
	}
	return fmt.Errorf("%w: %s", ErrConfig, text)
}

// splitProperties reads the key=value lines of a properties file, with the
// line each starts on, and the lines that are not key=value.
func splitProperties(text string) ([]propertyLine, []configProblem) {
	var lines []propertyLine
	var problems []configProblem
	add := func(line string, number int) {
		separator := strings.IndexAny(line, "=:")
		if separator < 0 {
			problems = append(problems, configProblem{number, fmt.Sprintf("%q is not key=value", line)})
			return
		}
		key := strings.TrimSpace(line[:separator])
		lines = append(lines, propertyLine{key: key, value: strings.TrimSpace(line[separator+1:]), line: number})
	}
	scanner := bufio.NewScanner(strings.NewReader(text))
	lineNumber, pending, pendingLine := 0, "", 0
	for scanner.Scan() {
		lineNumber++
		line := strings.TrimSpace(scanner.Text())
		if pending == "" && (line == "" || line[0] == '#' || line[0] == '!') {
			continue
		}
		if pending == "" {
			pendingLine = lineNumber
		}
		if strings.HasSuffix(line, `\`) {
			pending += strings.TrimSuffix(line, `\`)
			continue
		}
		line, pending = pending+line, ""
		add(line, pendingLine)
	}
	if err := scanner.Err(); err != nil {
		problems = append(problems, configProblem{lineNumber, err.Error()})
	}
	if pending != "" {
		add(pending, pendingLine)
	}
	return lines, problems
}

// apply sorts one setting: implemented, read with the listeners, ZooKeeper,
// ignored, or unknown.
func (s *parseState) apply(p propertyLine) {
	if set, ok := properties[p.key]; ok {
		if p.key == "node.id" || p.key == "broker.id" || p.key == processRolesKey {
			s.settings[p.key] = p
		}
		if err := set(&s.config, p.value); err != nil {
			s.problem(p.line, "%s: %v", p.key, err)
		}
		return
	}
	switch {
	case listenerSettings[p.key]:
		s.settings[p.key] = p
	case strings.HasPrefix(p.key, zooKeeperPrefix):
		s.zoo = append(s.zoo, p)
	case isKafkaSettingIgnored(p.key):
		s.ignored = append(s.ignored, p.key)
	default:
		if suggestion := suggestKey(p.key); suggestion != "" {
			s.problem(p.line, "unknown setting %q (did you mean %q?)", p.key, suggestion)
			return
		}
		s.problem(p.line, "unknown setting %q (docs/configuration.md lists every setting)", p.key)
	}
}

// checkZooKeeper turns every zookeeper.* setting into one problem that
// points to the KRaft settings.
func (s *parseState) checkZooKeeper() {
	if len(s.zoo) == 0 {
		return
	}
	keys := make([]string, len(s.zoo))
	for i, p := range s.zoo {
		keys[i] = p.key
	}
	s.problem(s.zoo[0].line, "%s: kafkasim has no ZooKeeper mode; like Kafka 4 it runs in KRaft mode: "+
		"remove the zookeeper.* settings and set node.id (and process.roles=broker,controller) instead; "+
		"see docs/configuration.md", strings.Join(keys, ", "))
}

// checkNodeIDs rejects node.id and broker.id set to different values, as
// Kafka does.
func (s *parseState) checkNodeIDs() {
	node, hasNode := s.settings["node.id"]
	broker, hasBroker := s.settings["broker.id"]
	if hasNode && hasBroker && node.value != broker.value {
		s.problem(broker.line, "broker.id=%s differs from node.id=%s (line %d); they name the same id, keep one",
			broker.value, node.value, node.line)
	}
}

// listenerAddress is one entry of listeners or advertised.listeners.
type listenerAddress struct {
	name, address string // name is "" for a bare host:port
}

// parseListenerSettings resolves listeners and advertised.listeners: each
// named listener gets its security protocol from
// listener.security.protocol.map (or its own name, PLAINTEXT, SSL, ...);
// the controller's listeners (controller.listener.names) are not served,
// with a warning; every client listener must be PLAINTEXT.
func (s *parseState) parseListenerSettings() {
	protocols, controllers := s.listenerProtocols()
	if p, ok := s.settings[listenersKey]; ok {
		if addrs := s.servedListeners(p, protocols, controllers, true); len(addrs) > 0 || !s.config.IsBroker() {
			s.config.Listeners = addrs
		} else if len(s.problems) == 0 {
			s.problem(p.line, "listeners: no PLAINTEXT listener for clients in %q", p.value)
		}
	}
	if p, ok := s.settings[advertisedListenersKey]; ok {
		s.config.AdvertisedListeners = s.servedListeners(p, protocols, controllers, false)
	}
}

// listenerProtocols reads listener.security.protocol.map (Kafka's default
// maps each protocol name to itself) and controller.listener.names.
func (s *parseState) listenerProtocols() (map[string]string, map[string]bool) {
	protocols := map[string]string{
		"PLAINTEXT": "PLAINTEXT", "SSL": "SSL", "SASL_PLAINTEXT": "SASL_PLAINTEXT", "SASL_SSL": "SASL_SSL",
	}
	if p, ok := s.settings[protocolMapKey]; ok {
		protocols = map[string]string{}
		for _, item := range splitList(p.value) {
			name, protocol, ok := strings.Cut(item, ":")
			if !ok || name == "" || protocol == "" {
				s.problem(p.line, "%s: %q is not NAME:PROTOCOL", protocolMapKey, item)
				continue
			}
			protocols[strings.ToUpper(name)] = strings.ToUpper(protocol)
		}
	}
	controllers := map[string]bool{}
	if p, ok := s.settings[controllerListenersKey]; ok {
		for _, name := range splitList(p.value) {
			controllers[strings.ToUpper(name)] = true
			if _, mapped := protocols[strings.ToUpper(name)]; !mapped {
				// Kafka 4 gives an unmapped controller listener PLAINTEXT.
				protocols[strings.ToUpper(name)] = plaintextProtocol
			}
		}
	}
	return protocols, controllers
}

// servedListeners returns the host:port of the client listeners of one
// listeners-style setting, warning about controller listeners when warn is
// set (once, for listeners; advertised.listeners repeats them).
func (s *parseState) servedListeners(p propertyLine, protocols map[string]string, controllers map[string]bool, warn bool) []string {
	var addrs []string
	for _, item := range splitList(p.value) {
		listener, err := parseListener(item)
		if err != nil {
			s.problem(p.line, "%s: %v", p.key, err)
			continue
		}
		name := strings.ToUpper(listener.name)
		if name == "" {
			addrs = append(addrs, listener.address)
			continue
		}
		protocol, known := protocols[name]
		switch {
		case controllers[name] && warn && s.config.IsController() && s.config.ClusterMode():
			s.config.ControllerListeners = append(s.config.ControllerListeners, listener.address)
		case controllers[name] || name == controllerListenerName:
			if warn && !(s.config.IsController() && s.config.ClusterMode()) {
				s.warnings = append(s.warnings, fmt.Sprintf("listener %s is not served: without controller.quorum.voters "+
					"this node runs standalone, as its own controller (clients use the PLAINTEXT listeners)", item))
			}
		case !known:
			s.problem(p.line, "%s: listener %q: %s has no entry in %s", p.key, item, name, protocolMapKey)
		case protocol != plaintextProtocol:
			s.problem(p.line, "%s: listener %q: only PLAINTEXT is supported (it maps to %s)", p.key, item, protocol)
		default:
			addrs = append(addrs, listener.address)
		}
	}
	return addrs
}

// splitList splits a comma-separated value, dropping blanks.
func splitList(value string) []string {
	var items []string
	for _, item := range strings.Split(value, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

// parseListener reads "NAME://host:port" or a bare "host:port". An empty
// host means every interface, as in Kafka.
func parseListener(item string) (listenerAddress, error) {
	var listener listenerAddress
	if name, rest, ok := strings.Cut(item, "://"); ok {
		listener.name, item = name, rest
	}
	host, port, ok := strings.Cut(item, ":")
	if !ok || strings.Contains(port, ":") {
		return listener, fmt.Errorf("listener %q is not host:port", item)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return listener, fmt.Errorf("listener %q has an invalid port", item)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	listener.address = host + ":" + port
	return listener, nil
}

// suggestKey returns the known setting closest to an unknown key, or "" when
// none is close enough to be what was meant.
func suggestKey(key string) string {
	candidates := make([]string, 0, len(properties)+len(kafkaSettingsIgnored)+len(listenerSettings))
	for name := range properties { // order-independent: sorted below
		candidates = append(candidates, name)
	}
	for name := range kafkaSettingsIgnored { // order-independent: sorted below
		candidates = append(candidates, name)
	}
	for name := range listenerSettings { // order-independent: sorted below
		candidates = append(candidates, name)
	}
	sort.Strings(candidates)
	lower := strings.ToLower(key)
	best, bestDistance := "", suggestionDistanceMax+1
	for _, candidate := range candidates {
		distance := editDistance(lower, candidate)
		if distance < bestDistance && distance*3 < len(candidate) {
			best, bestDistance = candidate, distance
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b (insertions,
// deletions and substitutions of bytes).
func editDistance(a, b string) int {
	previous := make([]int, len(b)+1)
	current := make([]int, len(b)+1)
	for j := range previous {
		previous[j] = j
	}
	for i := 1; i <= len(a); i++ {
		current[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			current[j] = min(previous[j]+1, current[j-1]+1, previous[j-1]+cost)
		}
		previous, current = current, previous
	}
	return previous[len(b)]
}
