package broker

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/disk"
)

// TestDirectoryNamesFitEveryState checks that every name a partition
// directory can take (live, being deleted, set aside) fits the file system's
// limit for the longest legal topic name and the largest partition index,
// that deletion names of two topics sharing a long prefix differ, and that
// startup recognises each state by its name.
func TestDirectoryNamesFitEveryState(t *testing.T) {
	longest := strings.Repeat("t", topicNameBytesMax)
	prefixTwin := longest[:topicNameBytesMax-1] + "u"
	idA, idB := [16]byte{1}, [16]byte{2}
	lastIndex := int32(partitionsPerTopicMax - 1)
	c := &catalog{topics: map[string]*topic{longest: {name: longest, partitions: make([]*partition, partitionsPerTopicMax)}}}
	tests := []struct {
		name  string
		dir   string
		live  bool // startup must see it as a partition of a known topic
		state string
	}{
		{"live, longest", partitionDirName(longest, lastIndex), true, ""},
		{"live, short", partitionDirName("a", 0), false, ""},
		{"deleted, longest", deletedDirName(longest, idA, lastIndex), false, deletedSuffix},
		{"deleted, twin", deletedDirName(prefixTwin, idB, lastIndex), false, deletedSuffix},
		{"deleted, short", deletedDirName("a", idA, 0), false, deletedSuffix},
		{"orphaned, longest", orphanedDirName(partitionDirName(longest, lastIndex), 1), false, orphanedSuffix},
		{"orphaned, longest, attempt 12", orphanedDirName(partitionDirName(longest, lastIndex), 12), false, orphanedSuffix},
		{"orphaned, no dash", orphanedDirName(strings.Repeat("x", fileNameBytesMax), 3), false, orphanedSuffix},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.dir) > fileNameBytesMax {
				t.Fatalf("%d bytes, limit %d: %s", len(tt.dir), fileNameBytesMax, tt.dir)
			}
			if got := c.namesPartitionDir(tt.dir); got != tt.live {
				t.Errorf("namesPartitionDir = %v, want %v", got, tt.live)
			}
			switch tt.state {
			case deletedSuffix:
				if !strings.HasSuffix(tt.dir, deletedSuffix) {
					t.Errorf("%s does not end in %s, so startup would not remove it", tt.dir, deletedSuffix)
				}
			case orphanedSuffix:
				if !strings.Contains(tt.dir, orphanedSuffix) {
					t.Errorf("%s does not contain %s, so startup would set it aside again", tt.dir, orphanedSuffix)
				}
			}
		})
	}
	if deletedDirName(longest, idA, 7) == deletedDirName(prefixTwin, idB, 7) {
		t.Error("two topics with the same long prefix share a deletion name")
	}
	if orphanedDirName("a-1", 1) == orphanedDirName("a-1", 2) {
		t.Error("set-aside attempts share a name")
	}
}

// longTopicName is a legal topic name of the largest length.
func longTopicName(letter string) string { return strings.Repeat(letter, topicNameBytesMax) }

// TestLongestTopicNameLivesAndDiesOnRealDisk takes a topic with a
// 249-character name through create, produce, delete and restart, twice
// (the second time under the same name), on the real disk, which enforces
// the 255-byte limit on a name (the simulated disk does not). Before
// deletion names were cut to fit, the deletion's rename failed with
// ENAMETOOLONG and the broker never started again.
func TestLongestTopicNameLivesAndDiesOnRealDisk(t *testing.T) {
	dir := t.TempDir()
	name := longTopicName("L")
	for round := range 2 {
		r := startNode(t, dir, func(c *Config) { c.AutoCreateTopics = false })
		admin := kadm.NewClient(newClient(t, r.addr))
		ctx := testContext(t)
		created, err := admin.CreateTopic(ctx, 3, 1, nil, name)
		if err != nil || created.Err != nil {
			t.Fatalf("round %d: create: %v %v", round, err, created.Err)
		}
		producer := newClient(t, r.addr, kgo.DefaultProduceTopic(name))
		for i := range 10 {
			if err := producer.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
				t.Fatalf("round %d: produce: %v", round, err)
			}
		}
		producer.Close()
		deleted, err := admin.DeleteTopics(ctx, name)
		if err != nil || deleted[name].Err != nil {
			t.Fatalf("round %d: delete: %v %v", round, err, deleted[name].Err)
		}
		r.stop()
		r = startNode(t, dir, nil)
		topics, err := kadm.NewClient(newClient(t, r.addr)).ListTopics(testContext(t))
		if err != nil {
			t.Fatalf("round %d: after restart: %v", round, err)
		}
		if topics.Has(name) {
			t.Fatalf("round %d: deleted topic back after restart", round)
		}
		r.stop()
		assertNoLeftovers(t, dir, name)
	}
}

// assertNoLeftovers fails when the log dir still holds a directory of the
// topic called name in any state.
func assertNoLeftovers(t *testing.T, dir, name string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), name[:100]) {
			t.Fatalf("leftover %s", e.Name())
		}
	}
}

// TestStartupFinishesLongDeletionsAndSetsAsideLongOrphans starts a broker
// on a real log dir as a crash can leave it with 249-character names: a
// deletion intent whose partition was already renamed for deletion, and
// whose other partition was not, and a live-named directory that no topic
// names (an interrupted create, partition 9999); and the deletion name of a
// topic called "x.orphaned". Startup must finish the deletions and set the
// orphan aside under a name the file system accepts.
func TestStartupFinishesLongDeletionsAndSetsAsideLongOrphans(t *testing.T) {
	dir := t.TempDir()
	doomed, orphan := longTopicName("d"), longTopicName("o")
	id := [16]byte{0xab, 1}
	catalogJSON := fmt.Sprintf(`{"version":1,"topics":[{"name":%q,"id":%q,"partitions":2,"deleting":true}]}`, doomed, hex.EncodeToString(id[:]))
	fsys, err := disk.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := core.WriteFileChecked(fsys, ".", catalogFileName, []byte(catalogJSON)); err != nil {
		t.Fatal(err)
	}
	strayDeletion := deletedDirName("x"+orphanedSuffix, id, 0)
	for _, name := range []string{
		strayDeletion,
		deletedDirName(doomed, id, 0),
		partitionDirName(doomed, 1),
		partitionDirName(orphan, partitionsPerTopicMax-1),
	} {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatalf("mkdir %s (%d bytes): %v", name, len(name), err)
		}
	}
	r := startNode(t, dir, nil)
	r.stop()
	assertNoLeftovers(t, dir, doomed)
	if _, err := os.Stat(filepath.Join(dir, strayDeletion)); err == nil {
		t.Fatalf("%s left in place", strayDeletion)
	}
	if _, err := os.Stat(filepath.Join(dir, orphanedDirName(partitionDirName(orphan, partitionsPerTopicMax-1), 1))); err != nil {
		t.Fatalf("orphan not set aside: %v", err)
	}
}

// TestPartitionCountKeepsLiveNamesShort checks that neither CreateTopics
// nor CreatePartitions goes past partitionsPerTopicMax partitions, the bound
// that keeps <249 characters>-<partition> within the name limit.
func TestPartitionCountKeepsLiveNamesShort(t *testing.T) {
	b := newSimBroker(t, 16, nil)
	name := longTopicName("p")
	create := createTopicsV7()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitionsPerTopicMax+1, 1
	create.Topics = append(create.Topics, rt)
	if code := b.roundTrip(t, create).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; code != kerr.InvalidPartitions.Code {
		t.Fatalf("create with %d partitions: error %d, want INVALID_PARTITIONS", partitionsPerTopicMax+1, code)
	}
	createTopic(t, b, name, 1)
	grow := kmsg.NewPtrCreatePartitionsRequest()
	gt := kmsg.NewCreatePartitionsRequestTopic()
	gt.Topic, gt.Count = name, partitionsPerTopicMax+1
	grow.Topics = append(grow.Topics, gt)
	if code := b.roundTrip(t, grow).(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode; code != kerr.InvalidPartitions.Code {
		t.Fatalf("grow to %d partitions: error %d, want INVALID_PARTITIONS", partitionsPerTopicMax+1, code)
	}
}
