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
	c, warnings, err := ParseProperties(DefaultConfig(), text)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings for a file of implemented settings: %q", warnings)
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
		{"listeners=BROKER://127.0.0.1:9093", "BROKER has no entry in listener.security.protocol.map"},
		{"listeners=CLIENT://:9092\nlistener.security.protocol.map=CLIENT:SASL_SSL", "only PLAINTEXT is supported (it maps to SASL_SSL)"},
		{"listeners=CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER", "no PLAINTEXT listener for clients"},
		{"listener.security.protocol.map=PLAINTEXT", `"PLAINTEXT" is not NAME:PROTOCOL`},
		{"node.id=1\nbroker.id=2", "broker.id=2 differs from node.id=1 (line 1)"},
		{"process.roles=controller", "process.roles=controller needs controller.quorum.voters"},
		{"process.roles=broker,zookeeper", "unknown role \"zookeeper\""},
		{"controller.quorum.voters=1@a:1,1@b:2", "names node 1 twice"},
		{"zookeeper.connect=localhost:2181", "no ZooKeeper mode"},
		{"num.partitions=2\nnum.partitions=3", "num.partitions is set twice (lines 1 and 2)"},
		{"listeners=", "no PLAINTEXT listener for clients"},
		{"listeners=CONTROLLER://:9093\nlistener.security.protocol.map=CONTROLLER:PLAINTEXT", "no PLAINTEXT listener for clients"},
		{"listeners=127.0.0.1", "not host:port"},
		{"listeners=127.0.0.1:99999", "invalid port"},
		{"log.dirs=/a,/b", "only one log directory"},
		{"just-a-word", "line 1"},
		{"\n\nlog.retention.ms=-5", "line 3"},
		{"default.replication.factor=3\nmin.insync.replicas=4", "min.insync.replicas 4 exceeds"},
	}
	for _, c := range cases {
		base := DefaultConfig()
		got, _, err := ParseProperties(base, c.text)
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

// TestParsePropertiesReportsEveryProblemAtOnce checks the exact error for a
// file with several kinds of mistakes: each is listed with its line, unknown
// keys with a suggestion when one is close, so one round of edits fixes the
// file.
func TestParsePropertiesReportsEveryProblemAtOnce(t *testing.T) {
	text := strings.Join([]string{
		"log.segmnt.bytes=100",
		"num.partitions=lots",
		"frobnicate.widgets=7",
		"zookeeper.connect=localhost:2181",
		"log.dirs=/a",
		"log.dirs=/b",
		"zookeeper.connection.timeout.ms=6000",
		"num.partition=3",
	}, "\n")
	_, _, err := ParseProperties(DefaultConfig(), text)
	want := `invalid configuration: 6 problems:
  line 1: unknown setting "log.segmnt.bytes" (did you mean "log.segment.bytes"?)
  line 2: num.partitions: "lots" is not an integer
  line 3: unknown setting "frobnicate.widgets" (docs/configuration.md lists every setting)
  line 4: zookeeper.connect, zookeeper.connection.timeout.ms: kafkasim has no ZooKeeper mode; like Kafka 4 it runs in KRaft mode: remove the zookeeper.* settings and set node.id (and process.roles=broker,controller) instead; see docs/configuration.md
  line 6: log.dirs is set twice (lines 5 and 6); keep one
  line 8: unknown setting "num.partition" (did you mean "num.partitions"?)`
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
}

// TestParsePropertiesWarnsOnceAboutIgnoredKafkaSettings checks that Kafka
// settings with no effect here load, and are named in a single warning
// line, and that named listeners resolve: the PLAINTEXT ones are served and
// advertised, the controller's is announced as not served.
func TestParsePropertiesWarnsOnceAboutIgnoredKafkaSettings(t *testing.T) {
	text := strings.Join([]string{
		"process.roles=broker,controller",
		"node.id=1",
		"controller.quorum.bootstrap.servers=localhost:9093",
		"listeners=PLAINTEXT://:9092,CONTROLLER://:9093,INTERNAL://127.0.0.1:9094",
		"advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093",
		"controller.listener.names=CONTROLLER",
		"listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT,SSL:SSL",
		"num.network.threads=3",
		"socket.send.buffer.bytes=102400",
		"listener.name.internal.ssl.keystore.location=/nowhere",
	}, "\n")
	c, warnings, err := ParseProperties(DefaultConfig(), text)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ignoring 4 Kafka settings that have no effect in kafkasim: controller.quorum.bootstrap.servers, " +
			"num.network.threads, socket.send.buffer.bytes, listener.name.internal.ssl.keystore.location",
		"listener CONTROLLER://:9093 is not served: without controller.quorum.voters this node runs standalone, as its own controller (clients use the PLAINTEXT listeners)",
	}
	if strings.Join(warnings, "\n") != strings.Join(want, "\n") {
		t.Fatalf("warnings:\n%s\nwant:\n%s", strings.Join(warnings, "\n"), strings.Join(want, "\n"))
	}
	if got := strings.Join(c.Listeners, ","); got != "0.0.0.0:9092,127.0.0.1:9094" {
		t.Errorf("Listeners = %s", got)
	}
	if got := strings.Join(c.advertised(), ","); got != "localhost:9092" {
		t.Errorf("advertised = %s", got)
	}
}

// TestSuggestKey checks the "did you mean" choice: close typos of
// implemented and of ignored Kafka settings get one, unrelated or very
// short keys do not.
func TestSuggestKey(t *testing.T) {
	cases := []struct{ key, want string }{
		{"log.flush.interval.mesages", "log.flush.interval.messages"},
		{"LOG.DIRS", "log.dirs"},
		{"num.io.thread", "num.io.threads"},
		{"listener", "listeners"},
		{"advertised.listener", "advertised.listeners"},
		{"abc", ""},
		{"completely.different.thing", ""},
	}
	for _, c := range cases {
		if got := suggestKey(c.key); got != c.want {
			t.Errorf("suggestKey(%q) = %q, want %q", c.key, got, c.want)
		}
	}
}

// TestIgnoredKafkaSettingsAreNotImplemented checks that no implemented
// setting is also in the ignored list or under an ignored prefix, so that
// a setting the broker honours is never reported as ignored and a typo in
// one never passes as an ignored Kafka setting.
func TestIgnoredKafkaSettingsAreNotImplemented(t *testing.T) {
	for name := range properties { // order-independent: each is checked alone
		if isKafkaSettingIgnored(name) {
			t.Errorf("%s is implemented and ignored", name)
		}
	}
	for name := range listenerSettings { // order-independent: each is checked alone
		if isKafkaSettingIgnored(name) {
			t.Errorf("%s is read with the listeners and ignored", name)
		}
	}
}

// TestParseClusterRoles checks the three shapes of a cluster-mode node: a
// combined voter, a broker-only node and a controller-only voter, which
// serves no client listener.
func TestParseClusterRoles(t *testing.T) {
	const voters = "controller.quorum.voters=1@localhost:9093,2@localhost:9094,3@localhost:9095\n"
	for _, tc := range []struct {
		name, text           string
		clients, controllers string
	}{
		{"combined", "node.id=1\nprocess.roles=broker,controller\n" + voters +
			"listeners=PLAINTEXT://:9092,CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER\n", "0.0.0.0:9092", "0.0.0.0:9093"},
		{"broker-only", "node.id=4\nprocess.roles=broker\n" + voters + "listeners=PLAINTEXT://:9096\n", "0.0.0.0:9096", ""},
		{"controller-only", "node.id=2\nprocess.roles=controller\n" + voters +
			"listeners=CONTROLLER://:9094\ncontroller.listener.names=CONTROLLER\n", "", "0.0.0.0:9094"},
	} {
		cfg, warnings, err := ParseProperties(DefaultConfig(), tc.text)
		if err != nil || len(warnings) != 0 {
			t.Fatalf("%s: %v %v", tc.name, err, warnings)
		}
		if got := strings.Join(cfg.Listeners, ","); got != tc.clients {
			t.Errorf("%s: client listeners %q, want %q", tc.name, got, tc.clients)
		}
		if got := strings.Join(cfg.ControllerListeners, ","); got != tc.controllers {
			t.Errorf("%s: controller listeners %q, want %q", tc.name, got, tc.controllers)
		}
		if !cfg.ClusterMode() || len(cfg.QuorumVoters) != 3 {
			t.Errorf("%s: not in cluster mode with three voters", tc.name)
		}
	}
}
