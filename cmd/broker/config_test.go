package main

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/kafkasim/kafkasim/broker"
)

// TestBadConfigurationExitsWithAClearError runs the binary with bad
// configurations and checks that each exits with status 1 and exactly the
// expected message, before binding any port (the started line never
// appears). A file with several mistakes lists them all at once.
func TestBadConfigurationExitsWithAClearError(t *testing.T) {
	dir := t.TempDir()
	writeFile := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	unknown := writeFile("unknown.properties", "listeners=PLAINTEXT://127.0.0.1:0\nlog.flush.interval.mesages=1\n")
	badValue := writeFile("bad-value.properties", "listeners=PLAINTEXT://127.0.0.1:0\nnum.partitions=lots\n")
	badListener := writeFile("bad-listener.properties", "listeners=SSL://127.0.0.1:9093\n")
	several := writeFile("several.properties", strings.Join([]string{
		"listeners=PLAINTEXT://127.0.0.1:0",
		"num.network.threads=3",
		"log.retension.hours=168",
		"num.partitions=2",
		"zookeeper.connect=localhost:2181",
		"num.partitions=3",
		"widgets.per.second=12",
	}, "\n"))
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown key", []string{"--config", unknown},
			unknown + `: invalid configuration: line 2: unknown setting "log.flush.interval.mesages" (did you mean "log.flush.interval.messages"?)`},
		{"bad value", []string{"--config", badValue},
			badValue + `: invalid configuration: line 2: num.partitions: "lots" is not an integer`},
		{"bad listener", []string{"--config", badListener},
			badListener + `: invalid configuration: line 1: listeners: listener "SSL://127.0.0.1:9093": only PLAINTEXT is supported (it maps to SSL)`},
		{"missing file", []string{"--config", filepath.Join(dir, "absent.properties")},
			"--config: open " + filepath.Join(dir, "absent.properties") + ": no such file or directory"},
		{"several mistakes", []string{"--config", several}, several + `: invalid configuration: 4 problems:
  line 3: unknown setting "log.retension.hours" (did you mean "log.retention.hours"?)
  line 5: zookeeper.connect: kafkasim has no ZooKeeper mode; like Kafka 4 it runs in KRaft mode: remove the zookeeper.* settings and set node.id (and process.roles=broker,controller) instead; see docs/configuration.md
  line 6: num.partitions is set twice (lines 4 and 6); keep one
  line 7: unknown setting "widgets.per.second" (docs/configuration.md lists every setting)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, stderr := runBroker(t, c.args...)
			if want := "broker: " + c.want + "\n"; status != 1 || stderr != want {
				t.Fatalf("status %d, stderr:\n%s\nwant status 1 and:\n%s", status, stderr, want)
			}
		})
	}
}

// kafkaQuickstartConfigs are Apache Kafka's own KRaft quickstart files,
// unmodified (see testdata/README.md), with the warnings each loads with:
// config/kraft/server.properties of Kafka 3.9 names a static quorum
// (controller.quorum.voters) and so runs a one-node cluster whose
// CONTROLLER listener serves the quorum; config/kraft/reconfig-server.properties
// (dynamic quorum, from which Kafka 4's config/server.properties was made)
// names controller.quorum.bootstrap.servers, which is not implemented, and
// runs standalone.
var kafkaQuickstartConfigs = []struct {
	path     string
	warnings []string
}{
	{"testdata/kafka-3.9-kraft-server.properties", []string{
		"ignoring 8 Kafka settings that have no effect in kafkasim: inter.broker.listener.name, num.network.threads, " +
			"num.io.threads, socket.send.buffer.bytes, socket.receive.buffer.bytes, num.recovery.threads.per.data.dir, " +
			"transaction.state.log.replication.factor, transaction.state.log.min.isr",
	}},
	{"testdata/kafka-3.9-kraft-reconfig-server.properties", []string{
		"ignoring 9 Kafka settings that have no effect in kafkasim: controller.quorum.bootstrap.servers, " +
			"inter.broker.listener.name, num.network.threads, num.io.threads, socket.send.buffer.bytes, " +
			"socket.receive.buffer.bytes, num.recovery.threads.per.data.dir, " +
			"transaction.state.log.replication.factor, transaction.state.log.min.isr",
		"listener CONTROLLER://:9093 is not served: without controller.quorum.voters this node runs standalone, " +
			"as its own controller (clients use the PLAINTEXT listeners)",
	}},
}

// TestKafkaQuickstartConfigsLoad checks that each Kafka quickstart file
// loads with exactly the warnings docs/configuration.md shows, and that the
// PLAINTEXT listener, the node id, the segment size and the data directory
// are taken from it.
func TestKafkaQuickstartConfigsLoad(t *testing.T) {
	for _, file := range kafkaQuickstartConfigs {
		t.Run(filepath.Base(file.path), func(t *testing.T) {
			cfg, warnings, err := loadConfig(file.path)
			if err != nil {
				t.Fatal(err)
			}
			want := file.warnings
			if strings.Join(warnings, "\n") != strings.Join(want, "\n") {
				t.Fatalf("warnings:\n%s\nwant:\n%s", strings.Join(warnings, "\n"), strings.Join(want, "\n"))
			}
			if got := strings.Join(cfg.Listeners, ","); got != "0.0.0.0:9092" {
				t.Errorf("listeners %s, want 0.0.0.0:9092", got)
			}
			if cfg.LogDir != "/tmp/kraft-combined-logs" || cfg.NodeID != 1 || cfg.SegmentBytes != 1073741824 {
				t.Errorf("log.dirs %s, node.id %d, log.segment.bytes %d", cfg.LogDir, cfg.NodeID, cfg.SegmentBytes)
			}
		})
	}
}

// TestKafkaZooKeeperConfigIsRefused checks that Kafka 3.9's ZooKeeper-mode
// config/server.properties is refused with one problem naming both
// ZooKeeper settings and pointing to the KRaft settings, and nothing else.
func TestKafkaZooKeeperConfigIsRefused(t *testing.T) {
	path := "testdata/kafka-3.9-zookeeper-server.properties"
	_, _, err := loadConfig(path)
	want := path + ": invalid configuration: line 125: zookeeper.connect, zookeeper.connection.timeout.ms: " +
		"kafkasim has no ZooKeeper mode; like Kafka 4 it runs in KRaft mode: remove the zookeeper.* settings " +
		"and set node.id (and process.roles=broker,controller) instead; see docs/configuration.md"
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
}

// TestKafkaQuickstartConfigRuns starts the binary on Kafka's quickstart
// file with only its listeners, advertised.listeners and log.dirs lines
// pointed at a free port and a temporary directory, and checks that it logs the two warnings and
// serves clients.
func TestKafkaQuickstartConfigRuns(t *testing.T) {
	text, err := os.ReadFile(kafkaQuickstartConfigs[1].path)
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	replaced := strings.NewReplacer(
		"\nlisteners=PLAINTEXT://:9092,CONTROLLER://:9093\n", "\nlisteners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0\n",
		"\nadvertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093\n", "\n#advertised.listeners=\n",
		"\nlog.dirs=/tmp/kraft-combined-logs\n", "\nlog.dirs="+dataDir+"\n",
	).Replace(string(text))
	if strings.Count(replaced, dataDir) != 1 || !strings.Contains(replaced, "127.0.0.1:0,CONTROLLER") ||
		!strings.Contains(replaced, "#advertised.listeners=\n") {
		t.Fatal("the quickstart file no longer has the lines this test rewrites")
	}
	path := filepath.Join(t.TempDir(), "server.properties")
	if err := os.WriteFile(path, []byte(replaced), 0o644); err != nil {
		t.Fatal(err)
	}
	b := startBrokerWith(t, dataDir, path)
	warnings := regexp.MustCompile(`(?m)^.*level=WARN.*$`).FindAllString(b.log.String(), -1)
	if len(warnings) != 2 || !strings.Contains(warnings[0], `msg="ignoring 9 Kafka settings`) ||
		!strings.Contains(warnings[1], `msg="listener CONTROLLER://127.0.0.1:0 is not served`) {
		t.Fatalf("warning lines:\n%s", strings.Join(warnings, "\n"))
	}
	if values := produceValues(t, b.addr, "from-kafka-config", "v", 10); len(readAll(t, b.addr, "from-kafka-config")) != len(values) {
		t.Fatal("records produced under the Kafka config were not read back")
	}
}

// TestExampleConfigsLoad checks that every shipped example loads without a
// warning, and that the single-node example states exactly the embedded
// defaults, so its comments cannot drift from the code.
func TestExampleConfigsLoad(t *testing.T) {
	paths, err := filepath.Glob("examples/*.properties")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no example configs: %v", err)
	}
	for _, path := range paths {
		cfg, warnings, err := loadConfig(path)
		if err != nil || len(warnings) > 0 {
			t.Errorf("%s: %v, warnings %q", path, err, warnings)
		}
		if filepath.Base(path) == "server.properties" && !reflect.DeepEqual(cfg, broker.DefaultConfig()) {
			t.Errorf("%s differs from the embedded defaults:\n%+v\n%+v", path, cfg, broker.DefaultConfig())
		}
	}
}
