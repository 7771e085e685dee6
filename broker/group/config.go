package group

import (
	"errors"
	"fmt"
	"time"
)

// Bounds that are not configurable: they protect memory against a single bad
// request and are far above what any real client sends.
const (
	// groupIDBytesMax bounds a group id. Kafka sets no limit; ours keeps keys
	// in __consumer_offsets small.
	groupIDBytesMax = 1024
	// instanceIDBytesMax bounds a group.instance.id (Kafka validates it like
	// a topic name, 249 characters).
	instanceIDBytesMax = 255
	// clientIDBytesMax bounds the client id kept per member and used as the
	// prefix of generated member ids.
	clientIDBytesMax = 255
	// protocolsPerMemberMax bounds the protocols one JoinGroup may offer.
	protocolsPerMemberMax = 64
	// memberProtocolBytesMax bounds the sum of protocol names and metadata
	// that one member offers.
	memberProtocolBytesMax = 1 << 20
	// memberIDAttemptsMax bounds the retries when a freshly drawn member id
	// collides with one in use (a 64-bit draw: practically never).
	memberIDAttemptsMax = 8
)

// Config holds the coordinator's settings. The names mirror Kafka's broker
// properties.
type Config struct {
	// SessionTimeoutMin and SessionTimeoutMax bound the session timeout a
	// member may ask for (group.min.session.timeout.ms, default 6s, and
	// group.max.session.timeout.ms, default 30 minutes).
	SessionTimeoutMin, SessionTimeoutMax time.Duration

	// InitialRebalanceDelay is how long the first rebalance of an empty
	// group waits for more members (group.initial.rebalance.delay.ms,
	// default 3s; the simulator uses 0).
	InitialRebalanceDelay time.Duration

	// MembersPerGroupMax bounds the members of one group, counting member ids
	// handed out with MEMBER_ID_REQUIRED (group.max.size; Kafka's default is
	// unbounded, ours 1000).
	MembersPerGroupMax int

	// GroupsMax bounds the groups one coordinator holds. A request that
	// would create one more gets COORDINATOR_NOT_AVAILABLE.
	GroupsMax int

	// OffsetMetadataBytesMax bounds the metadata string of one committed
	// offset (offset.metadata.max.bytes, default 4096).
	OffsetMetadataBytesMax int

	// GroupMetadataBytesMax bounds one encoded group metadata record, which
	// holds every member's subscription and assignment (Kafka's
	// message.max.bytes, about 1 MiB). A larger assignment fails the
	// rebalance with UNKNOWN_SERVER_ERROR, as in Kafka.
	GroupMetadataBytesMax int

	// OffsetsPartitions is the partition count of __consumer_offsets
	// (offsets.topic.num.partitions; Kafka's default is 50). A group lives
	// in partition OffsetsPartition(group, OffsetsPartitions), and
	// UnloadPartition makes every group of one partition unavailable.
	OffsetsPartitions int32

	// PartitionsStartUnloaded makes the coordinator serve no partition
	// until LoadPartition loads it: a broker of a cluster serves only the
	// groups of the offsets partitions it leads.
	PartitionsStartUnloaded bool
}

// DefaultConfig returns Kafka's defaults, with bounds where Kafka has none.
func DefaultConfig() Config {
	return Config{
		SessionTimeoutMin:      6 * time.Second,
		SessionTimeoutMax:      30 * time.Minute,
		InitialRebalanceDelay:  3 * time.Second,
		MembersPerGroupMax:     1000,
		GroupsMax:              10000,
		OffsetMetadataBytesMax: 4096,
		GroupMetadataBytesMax:  1 << 20,
		OffsetsPartitions:      50,
	}
}

// errInvalidConfig is wrapped by every Config.Validate error.
var errInvalidConfig = errors.New("invalid group coordinator config")

// Validate reports the first setting that is out of range.
func (c Config) Validate() error {
	switch {
	case c.SessionTimeoutMin <= 0:
		return fmt.Errorf("%w: group.min.session.timeout.ms must be positive, got %v", errInvalidConfig, c.SessionTimeoutMin)
	case c.SessionTimeoutMax < c.SessionTimeoutMin:
		return fmt.Errorf("%w: group.max.session.timeout.ms (%v) is below group.min.session.timeout.ms (%v)",
			errInvalidConfig, c.SessionTimeoutMax, c.SessionTimeoutMin)
	case c.InitialRebalanceDelay < 0:
		return fmt.Errorf("%w: group.initial.rebalance.delay.ms must not be negative, got %v", errInvalidConfig, c.InitialRebalanceDelay)
	case c.MembersPerGroupMax < 1:
		return fmt.Errorf("%w: group.max.size must be at least 1, got %d", errInvalidConfig, c.MembersPerGroupMax)
	case c.GroupsMax < 1:
		return fmt.Errorf("%w: the group limit must be at least 1, got %d", errInvalidConfig, c.GroupsMax)
	case c.OffsetMetadataBytesMax < 0:
		return fmt.Errorf("%w: offset.metadata.max.bytes must not be negative, got %d", errInvalidConfig, c.OffsetMetadataBytesMax)
	case c.OffsetsPartitions < 1:
		return fmt.Errorf("%w: offsets.topic.num.partitions must be at least 1, got %d", errInvalidConfig, c.OffsetsPartitions)
	case c.GroupMetadataBytesMax < 1024:
		return fmt.Errorf("%w: the group metadata record limit must be at least 1024 bytes, got %d", errInvalidConfig, c.GroupMetadataBytesMax)
	}
	return nil
}
