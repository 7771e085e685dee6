package broker

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

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
	// FlushIntervalMessages syncs a partition after this many records
	// (log.flush.interval.messages); 1 syncs before every acknowledgement.
	FlushIntervalMessages int64
	// FlushIntervalMs syncs every partition at least this often
	// (log.flush.interval.ms); -1 disables the timer.
	FlushIntervalMs int64

	// ReplicaLagTimeMaxMs removes a follower from the ISR after this long
	// without catching up (replica.lag.time.max.ms).
	ReplicaLagTimeMaxMs int64

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
}

// DefaultConfig returns the embedded defaults: a single node on
// 127.0.0.1:9092 with its data under "data". Durations and sizes are
// Kafka's defaults.
func DefaultConfig() Config {
	const hourMs = 60 * 60 * 1000
	return Config{
		NodeID:                       1,
		ClusterID:                    "kafkasim",
		Listeners:                    []string{"127.0.0.1:9092"},
		LogDir:                       "data",
		NumPartitions:                1,
		DefaultReplicationFactor:     1,
		MinInsyncReplicas:            1,
		AutoCreateTopics:             true,
		MessageBytesMax:              1048588,
		RequestBytesMax:              100 << 20,
		SegmentBytes:                 1 << 30,
		SegmentMs:                    7 * 24 * hourMs,
		RetentionMs:                  7 * 24 * hourMs,
		RetentionBytes:               -1,
		RetentionCheckIntervalMs:     5 * 60 * 1000,
		FlushIntervalMessages:        math.MaxInt64,
		FlushIntervalMs:              -1,
		ReplicaLagTimeMaxMs:          30_000,
		GroupInitialRebalanceDelayMs: 3000,
		GroupMinSessionTimeoutMs:     6000,
		GroupMaxSessionTimeoutMs:     30 * 60 * 1000,
		OffsetsTopicPartitions:       1,
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

func listenersProperty(set func(*Config, []string)) func(*Config, string) error {
	return func(c *Config, value string) error {
		addrs, err := parseListeners(value)
		if err != nil {
			return err
		}
		set(c, addrs)
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
	"listeners":            listenersProperty(func(c *Config, a []string) { c.Listeners = a }),
	"advertised.listeners": listenersProperty(func(c *Config, a []string) { c.AdvertisedListeners = a }),
	"log.dirs":             logDirProperty,
	"log.dir":              logDirProperty,
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
	"log.flush.interval.messages":     intProperty(1, math.MaxInt64, func(c *Config, n int64) { c.FlushIntervalMessages = n }),
	"log.flush.interval.ms":           intProperty(-1, math.MaxInt64, func(c *Config, n int64) { c.FlushIntervalMs = n }),
	"replica.lag.time.max.ms":         intProperty(1, math.MaxInt64, func(c *Config, n int64) { c.ReplicaLagTimeMaxMs = n }),
	"group.initial.rebalance.delay.ms": intProperty(0, math.MaxInt32, func(c *Config, n int64) {
		c.GroupInitialRebalanceDelayMs = n
	}),
	"group.min.session.timeout.ms": intProperty(1, math.MaxInt32, func(c *Config, n int64) { c.GroupMinSessionTimeoutMs = n }),
	"group.max.session.timeout.ms": intProperty(1, math.MaxInt32, func(c *Config, n int64) { c.GroupMaxSessionTimeoutMs = n }),
	"offsets.topic.num.partitions": intProperty(1, partitionsPerTopicMax, func(c *Config, n int64) {
		c.OffsetsTopicPartitions = int32(n)
	}),
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

// parseListeners reads "PLAINTEXT://host:port[,...]" (or bare host:port).
// Only plaintext listeners exist; TLS and SASL are not implemented.
func parseListeners(value string) ([]string, error) {
	var addrs []string
	for _, item := range strings.Split(value, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if scheme, rest, ok := strings.Cut(item, "://"); ok {
			if !strings.EqualFold(scheme, "PLAINTEXT") {
				return nil, fmt.Errorf("listener %q: only PLAINTEXT is supported", item)
			}
			item = rest
		}
		host, port, ok := strings.Cut(item, ":")
		if !ok || strings.Contains(port, ":") {
			return nil, fmt.Errorf("listener %q is not host:port", item)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return nil, fmt.Errorf("listener %q has an invalid port", item)
		}
		if host == "" {
			host = "0.0.0.0"
		}
		addrs = append(addrs, host+":"+port)
	}
	if len(addrs) == 0 {
		return nil, errors.New("no listener given")
	}
	return addrs, nil
}

// ParseProperties reads a server.properties file (Java properties syntax:
// key=value or key: value, # and ! comments, trailing-backslash line
// continuation) on top of base. Unknown keys and invalid values are errors
// that name the key and the line.
func ParseProperties(base Config, text string) (Config, error) {
	c := base
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
		if err := applyProperty(&c, line); err != nil {
			return base, fmt.Errorf("%w: line %d: %v", ErrConfig, pendingLine, err)
		}
	}
	if err := scanner.Err(); err != nil {
		return base, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if pending != "" {
		if err := applyProperty(&c, pending); err != nil {
			return base, fmt.Errorf("%w: line %d: %v", ErrConfig, pendingLine, err)
		}
	}
	if err := c.Validate(); err != nil {
		return base, err
	}
	return c, nil
}

func applyProperty(c *Config, line string) error {
	separator := strings.IndexAny(line, "=:")
	if separator < 0 {
		return fmt.Errorf("%q is not key=value", line)
	}
	key := strings.TrimSpace(line[:separator])
	value := strings.TrimSpace(line[separator+1:])
	p, ok := properties[key]
	if !ok {
		return fmt.Errorf("unknown setting %q (known: %s)", key, knownProperties())
	}
	if err := p(c, value); err != nil {
		return fmt.Errorf("%s: %v", key, err)
	}
	return nil
}

func knownProperties() string {
	names := make([]string, 0, len(properties))
	for name := range properties { // order-independent: sorted below
		names = append(names, name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// Validate checks the relations between settings.
func (c Config) Validate() error {
	switch {
	case len(c.Listeners) == 0:
		return fmt.Errorf("%w: listeners: no listener given", ErrConfig)
	case c.MinInsyncReplicas > c.DefaultReplicationFactor && c.DefaultReplicationFactor > 1:
		return fmt.Errorf("%w: min.insync.replicas %d exceeds default.replication.factor %d",
			ErrConfig, c.MinInsyncReplicas, c.DefaultReplicationFactor)
	case c.GroupMinSessionTimeoutMs > c.GroupMaxSessionTimeoutMs:
		return fmt.Errorf("%w: group.min.session.timeout.ms %d exceeds group.max.session.timeout.ms %d",
			ErrConfig, c.GroupMinSessionTimeoutMs, c.GroupMaxSessionTimeoutMs)
	case int64(c.MessageBytesMax) > int64(c.RequestBytesMax):
		return fmt.Errorf("%w: message.max.bytes %d exceeds socket.request.max.bytes %d",
			ErrConfig, c.MessageBytesMax, c.RequestBytesMax)
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
