package broker

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/kafkasim/kafkasim/broker/metadata"
	"github.com/kafkasim/kafkasim/client"
)

// createTopics creates count one-partition topics named prefix-i through
// the client, batchSize per request, and fails on any error.
func (sc *simCluster) createTopics(prefix string, count, batchSize int) {
	sc.t.Helper()
	for first := 0; first < count; first += batchSize {
		var specs []client.TopicSpec
		for i := first; i < min(first+batchSize, count); i++ {
			specs = append(specs, client.TopicSpec{Topic: fmt.Sprintf("%s-%d", prefix, i), Partitions: 1, ReplicationFactor: 1})
		}
		done := false
		sc.admin.CreateTopics(specs, func(errs []client.TopicError, err error) {
			done = true
			if err != nil {
				sc.t.Errorf("create topics: %v", err)
			}
			for _, e := range errs {
				if e.Err != nil {
					sc.t.Errorf("create topic %s: %v", e.Topic, e.Err)
				}
			}
		})
		sc.runUntil("CreateTopics answered", 30*time.Second, func() bool { return done })
	}
}

// TestClusterMetadataSnapshots commits enough metadata for the quorum to
// snapshot (the default threshold, 1000 entries) while one broker is down,
// then restarts it: its log is behind every other node's log start, so it
// must fetch the leader's snapshot and load it into its image, after which
// its image holds every topic, it is unfenced again, it leads new
// partitions and serves them, and every node's image ends up the same.
// (Loading a snapshot from the node's own disk at a restart is covered in
// broker/quorum; here the catalog sets the metadata log directory aside
// at every restart, so a restarted node always starts from an empty log.)
func TestClusterMetadataSnapshots(t *testing.T) {
	sc := newSimCluster(t, 3, 3)
	sc.runUntil("an active controller", 20*time.Second, func() bool { return sc.activeController() != nil })
	sc.runUntil("every broker unfenced", 20*time.Second, sc.unfenced)
	var down *simClusterNode
	for _, n := range sc.nodes {
		if n != sc.activeController() {
			down = n
		}
	}
	down.crash()
	sc.runUntil("the stopped broker fenced", 30*time.Second, func() bool {
		b, _ := sc.activeController().node.cluster.image.Broker(down.id)
		return b.Fenced
	})
	const topics = 1100
	sc.createTopics("t", topics, 1)
	leader := sc.activeController()
	if start := leader.node.cluster.host.LogStartOffset(); start < 1000 {
		t.Fatalf("the leader's metadata log starts at %d after %d topics", start, topics)
	}

	down.restart()
	sc.runUntil("the restarted broker unfenced", 40*time.Second, sc.unfenced)
	image := down.node.cluster.image
	if down.node.cluster.host.LogStartOffset() == 0 {
		t.Fatal("the restarted broker caught up without a snapshot")
	}
	for i := range topics {
		if _, ok := image.TopicByName(fmt.Sprintf("t-%d", i)); !ok {
			t.Fatalf("the restarted broker's image lacks topic t-%d", i)
		}
	}
	// New topics are placed on it again, and it serves those it leads.
	sc.createTopics("u", 30, 30)
	sc.runUntil("the restarted broker leads a new topic locally", 10*time.Second, func() bool {
		for i := range 30 {
			name := fmt.Sprintf("u-%d", i)
			topic, ok := image.TopicByName(name)
			if ok && topic.Partitions[0].Leader == down.id && down.node.catalog.partition(name, 0) != nil {
				return true
			}
		}
		return false
	})
	sc.runUntil("every image agrees", 10*time.Second, func() bool { return sameImages(sc) })
}

// sameImages reports whether every live node's image applied the same
// offset and encodes to the same bytes.
func sameImages(sc *simCluster) bool {
	var first *metadata.Image
	for _, n := range sc.nodes {
		if n.node == nil {
			continue
		}
		image := n.node.cluster.image
		if first == nil {
			first = image
			continue
		}
		if image.AppliedOffset() != first.AppliedOffset() || !bytes.Equal(image.Snapshot(), first.Snapshot()) {
			return false
		}
	}
	return true
}
