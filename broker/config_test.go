package broker

import (
	"errors"
	"strings"
	"testing"
)

// TestParsePropertiesReadsKafkaNames checks that a server.properties file
// with Kafka's setting names, comments, both separators and a continued line
// lands in the right fields, and that unit variants convert to milliseconds.
func TestParsePropertiesReadsKafkaNames(t *testing.T) {
	text := `
# a comment
! another comment
node.id=3
listeners=PLAINTEXT://127.0.0.1:19092
advertised.listeners: PLAINTEXT://localhost:19092
log.dirs = /var/lib/kafkasim
num.partitions=6
default.replication.factor=3
min.insync.replicas=2
log.segment.bytes=1048576
log.retention.hours=2
log.retention.bytes=\
  5000000
log.flush.interval.messages=1
auto.create.topics.enable=false
message.max.bytes=2000000
`
	c, err := ParseProperties(DefaultConfig(), text)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"NodeID", c.NodeID, int32(3)},
		{"Listeners", strings.Join(c.Listeners, ","), "127.0.0.1:19092"},
		{"AdvertisedListeners", strings.Join(c.advertised(), ","), "localhost:19092"},
		{"LogDir", c.LogDir, "/var/lib/kafkasim"},
		{"NumPartitions", c.NumPartitions, int32(6)},
		{"DefaultReplicationFactor", c.DefaultReplicationFactor, int16(3)},
		{"MinInsyncReplicas", c.MinInsyncReplicas, int16(2)},
		{"SegmentBytes", c.SegmentBytes, int64(1 << 20)},
		{"RetentionMs", c.RetentionMs, int64(2 * 3600 * 1000)},
		{"RetentionBytes", c.RetentionBytes, int64(5000000)},
		{"FlushIntervalMessages", c.FlushIntervalMessages, int64(1)},
		{"AutoCreateTopics", c.AutoCreateTopics, false},
		{"MessageBytesMax", c.MessageBytesMax, int32(2000000)},
	}
	for _, check := range checks {
		if check.got != check.want {
			t.Errorf("%s = %v, want %v", check.name, check.got, check.want)
		}
	}
}

// TestParsePropertiesRejectsBadSettings checks that every kind of mistake is
// an ErrConfig naming the offending key or line, and that the base config is
// returned untouched.
func TestParsePropertiesRejectsBadSettings(t *testing.T) {
	cases := []struct{ text, mention string }{
		{"log.segmnt.bytes=100", `"log.segmnt.bytes"`},
		{"num.partitions=zero", "num.partitions"},
		{"num.partitions=0", "num.partitions"},
		{"auto.create.topics.enable=yes", "auto.create.topics.enable"},
		{"listeners=SSL://127.0.0.1:9093", "only PLAINTEXT"},
		{"listeners=127.0.0.1", "not host:port"},
		{"listeners=127.0.0.1:99999", "invalid port"},
		{"log.dirs=/a,/b", "only one log directory"},
		{"just-a-word", "line 1"},
		{"\n\nlog.retention.ms=-5", "line 3"},
		{"default.replication.factor=3\nmin.insync.replicas=4", "min.insync.replicas 4 exceeds"},
	}
	for _, c := range cases {
		base := DefaultConfig()
		got, err := ParseProperties(base, c.text)
		if !errors.Is(err, ErrConfig) {
			t.Errorf("%q: got %v, want ErrConfig", c.text, err)
			continue
		}
		if !strings.Contains(err.Error(), c.mention) {
			t.Errorf("%q: error %q does not mention %q", c.text, err, c.mention)
		}
		if got.NumPartitions != base.NumPartitions || got.LogDir != base.LogDir {
			t.Errorf("%q: base config was modified", c.text)
		}
	}
}

// TestDefaultConfigIsValid checks that the embedded defaults pass validation
// and describe a single local node.
func TestDefaultConfigIsValid(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Listeners[0] != "127.0.0.1:9092" {
		t.Fatalf("default listener %v", c.Listeners)
	}
}
