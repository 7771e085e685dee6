package broker

import (
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/kafkasim/kafkasim/broker/storage"
	"github.com/kafkasim/kafkasim/core/record"
)

// topicConfig is the effective configuration of one topic: the broker's
// defaults with the topic's overrides applied.
type topicConfig struct {
	retentionMs       int64
	retentionBytes    int64
	segmentBytes      int64
	segmentMs         int64
	maxMessageBytes   int32
	minInsyncReplicas int16
	flushMessages     int64
	logAppendTime     bool
	// recompress says whether batches are rewritten with codec before they
	// are stored (compression.type names a codec); otherwise they are kept
	// as the producer sent them (compression.type=producer).
	recompress bool
	codec      record.Codec
}

// compressionTypes maps the values of Kafka's compression.type topic config
// to codecs; "producer" keeps each batch's own codec.
var compressionTypes = []struct {
	name  string
	codec record.Codec
}{
	{"producer", record.CodecNone},
	{"uncompressed", record.CodecNone},
	{"gzip", record.CodecGzip},
	{"snappy", record.CodecSnappy},
	{"lz4", record.CodecLZ4},
	{"zstd", record.CodecZstd},
}

// targetCodec returns the codec a produced batch must be stored with, and
// false when batches are stored as the producer compressed them. The
// produce path calls record.Recompress when a batch's codec differs, as
// Kafka's LogValidator rebuilds such batches.
func (c topicConfig) targetCodec() (record.Codec, bool) {
	return c.codec, c.recompress
}

// applyCleanupPolicy accepts Kafka's cleanup.policy values that this broker
// implements. Compaction ("compact", alone or with "delete") is refused with
// a message saying so, rather than accepted and silently not done.
func applyCleanupPolicy(_ *topicConfig, value string) error {
	switch value {
	case "delete":
		return nil
	case "compact", "compact,delete", "delete,compact":
		return fmt.Errorf("cleanup.policy=%q is not supported: log compaction is not implemented yet (only delete)", value)
	}
	return fmt.Errorf("cleanup.policy=%q must be delete (compact is not implemented yet)", value)
}

// applyCompressionType parses compression.type.
func applyCompressionType(c *topicConfig, value string) error {
	for _, t := range compressionTypes {
		if t.name == value {
			c.codec, c.recompress = t.codec, t.name != "producer"
			return nil
		}
	}
	return fmt.Errorf("compression.type=%q must be one of producer, uncompressed, gzip, snappy, lz4, zstd", value)
}

// topicSetting describes one topic-level setting (the names of Kafka's
// CreateTopics configs and DescribeConfigs entries).
type topicSetting struct {
	name string
	// brokerDefault renders the broker-wide default.
	brokerDefault func(Config) string
	// apply parses value into c, or explains why it is invalid.
	apply func(c *topicConfig, value string) error
}

func topicIntSetting(name string, low, high int64, def func(Config) int64, set func(*topicConfig, int64)) topicSetting {
	return topicSetting{
		name:          name,
		brokerDefault: func(c Config) string { return strconv.FormatInt(def(c), 10) },
		apply: func(c *topicConfig, value string) error {
			v, err := strconv.ParseInt(value, 10, 64)
			if err != nil || v < low || v > high {
				return fmt.Errorf("%s=%q must be an integer in [%d, %d]", name, value, low, high)
			}
			set(c, v)
			return nil
		},
	}
}

// topicSettings lists every topic-level setting, sorted by name.
var topicSettings = []topicSetting{
	{name: "cleanup.policy", brokerDefault: func(Config) string { return "delete" }, apply: applyCleanupPolicy},
	{name: "compression.type", brokerDefault: func(Config) string { return "producer" }, apply: applyCompressionType},
	topicIntSetting("flush.messages", 1, math.MaxInt64,
		func(c Config) int64 { return c.FlushIntervalMessages },
		func(t *topicConfig, v int64) { t.flushMessages = v }),
	topicIntSetting("max.message.bytes", 0, math.MaxInt32,
		func(c Config) int64 { return int64(c.MessageBytesMax) },
		func(t *topicConfig, v int64) { t.maxMessageBytes = int32(v) }),
	{
		name:          "message.timestamp.type",
		brokerDefault: func(Config) string { return "CreateTime" },
		apply: func(c *topicConfig, value string) error {
			switch value {
			case "CreateTime":
				c.logAppendTime = false
			case "LogAppendTime":
				c.logAppendTime = true
			default:
				return fmt.Errorf("message.timestamp.type=%q must be CreateTime or LogAppendTime", value)
			}
			return nil
		},
	},
	topicIntSetting("min.insync.replicas", 1, replicationFactorMax,
		func(c Config) int64 { return int64(c.MinInsyncReplicas) },
		func(t *topicConfig, v int64) { t.minInsyncReplicas = int16(v) }),
	topicIntSetting("retention.bytes", -1, math.MaxInt64,
		func(c Config) int64 { return c.RetentionBytes },
		func(t *topicConfig, v int64) { t.retentionBytes = v }),
	topicIntSetting("retention.ms", -1, math.MaxInt64,
		func(c Config) int64 { return c.RetentionMs },
		func(t *topicConfig, v int64) { t.retentionMs = v }),
	topicIntSetting("segment.bytes", record.HeaderBytes, math.MaxInt32,
		func(c Config) int64 { return c.SegmentBytes },
		func(t *topicConfig, v int64) { t.segmentBytes = v }),
	topicIntSetting("segment.ms", 1, math.MaxInt64,
		func(c Config) int64 { return c.SegmentMs },
		func(t *topicConfig, v int64) { t.segmentMs = v }),
	{
		// Read by the controller when it elects the topic's leaders
		// (cluster mode); a standalone broker has no one to elect.
		name:          "unclean.leader.election.enable",
		brokerDefault: func(c Config) string { return strconv.FormatBool(c.UncleanLeaderElection) },
		apply: func(_ *topicConfig, value string) error {
			if value != "true" && value != "false" {
				return fmt.Errorf("unclean.leader.election.enable=%q must be true or false", value)
			}
			return nil
		},
	},
}

func findTopicSetting(name string) (topicSetting, bool) {
	i := sort.Search(len(topicSettings), func(i int) bool { return topicSettings[i].name >= name })
	if i < len(topicSettings) && topicSettings[i].name == name {
		return topicSettings[i], true
	}
	return topicSetting{}, false
}

// resolveTopicConfig applies overrides to the broker's defaults. Unknown
// names and invalid values are errors naming the setting.
func resolveTopicConfig(broker Config, overrides map[string]string) (topicConfig, error) {
	c := topicConfig{
		retentionMs:       broker.RetentionMs,
		retentionBytes:    broker.RetentionBytes,
		segmentBytes:      broker.SegmentBytes,
		segmentMs:         broker.SegmentMs,
		maxMessageBytes:   broker.MessageBytesMax,
		minInsyncReplicas: broker.MinInsyncReplicas,
		flushMessages:     broker.FlushIntervalMessages,
	}
	names := make([]string, 0, len(overrides))
	for name := range overrides { // order-independent: sorted below
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		setting, ok := findTopicSetting(name)
		if !ok {
			return c, fmt.Errorf("unknown topic config %q", name)
		}
		if err := setting.apply(&c, overrides[name]); err != nil {
			return c, err
		}
	}
	return c, nil
}

// storageConfig translates a topic's configuration for its partition logs.
func (c topicConfig) storageConfig() storage.Config {
	s := storage.DefaultConfig()
	s.SegmentBytesMax = c.segmentBytes
	s.SegmentAgeMsMax = c.segmentMs
	s.RetentionBytes = c.retentionBytes
	s.RetentionMs = c.retentionMs
	s.FlushIntervalMessages = c.flushMessages
	return s
}
