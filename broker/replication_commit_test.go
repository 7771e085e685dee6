package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestReplicationOffsetCommitsOfPartitionsLedElsewhere commits offsets of a
// partition its group's coordinator does not lead, as every consumer group
// of a cluster does: the commit must be taken (the metadata says the
// partition exists) and answered promptly, each of a batch of pipelined
// commits within a few fsyncs, not one replica.fetch.wait.max.ms each.
// Sim seed 4 (two replicas on four brokers) found both: the coordinator
// asked its local catalog, which knows only the partitions
// this broker leads, and answered UNKNOWN_TOPIC_OR_PARTITION; and a
// follower's fetch whose arrival advanced the high watermark read the log
// only to the end it had before the coordinator appended the next commit
// in the same instant, then parked on the log as it was after, so the
// follower waited out the fetch's maximum wait for every commit.
func TestReplicationOffsetCommitsOfPartitionsLedElsewhere(t *testing.T) {
	rc := newReplicationCluster(t, 11, nil)
	leader := rc.mustState().Leader
	group, coordinator := "", int32(-1)
	for i := 0; coordinator < 0 || coordinator == leader; i++ {
		group = fmt.Sprintf("group-%d", i)
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKey = group
		resp := rc.roundTrip(4, req).(*kmsg.FindCoordinatorResponse)
		if resp.ErrorCode != 0 {
			rc.runFor(100 * time.Millisecond)
			continue
		}
		coordinator = resp.NodeID
	}
	const commits = 20
	answered, start := 0, rc.sched.Now()
	var last time.Duration
	for i := range commits {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation, req.MemberID = group, -1, ""
		topic := kmsg.NewOffsetCommitRequestTopic()
		topic.Topic = replicationTopic
		partition := kmsg.NewOffsetCommitRequestTopicPartition()
		partition.Partition, partition.Offset = 0, int64(i+1)
		topic.Partitions = append(topic.Partitions, partition)
		req.Topics = append(req.Topics, topic)
		rc.send(brokerAddress(coordinator), req, func(r kmsg.Response, err error) {
			if err != nil {
				t.Errorf("commit %d: %v", i, err)
			} else if code := r.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
				t.Errorf("commit %d of %s-0 (led by broker %d) to coordinator %d: error code %d", i, replicationTopic, leader, coordinator, code)
			}
			answered++
			last = rc.sched.Now() - start
		})
	}
	rc.runUntil("every commit answered", time.Minute, func() bool { return answered == commits })
	// Each commit waits for its record's fsync on the leader and on a
	// follower, and for the follower's next fetch: tens of milliseconds
	// with this cluster's 10 ms fsyncs (63 ms each when written), against
	// the 510 ms each of a follower that sleeps out its fetch wait.
	waitMax := time.Duration(DefaultConfig().ReplicaFetchWaitMaxMs) * time.Millisecond
	if perCommit := last / commits; perCommit >= waitMax/2 {
		t.Errorf("%d pipelined commits took %v of virtual time, %v each: a follower waits out its fetch wait (%v) for each", commits, last, perCommit, waitMax)
	}
}
