package scenario

import (
	"fmt"

	"github.com/kafkasim/kafkasim/checker"
	"github.com/kafkasim/kafkasim/client"
	"github.com/kafkasim/kafkasim/sim"
)

// zombie replays earlier commits of the group's members under their old
// membership (member id and generation), as a member paused or cut off
// past its session timeout would send them once it wakes: every so often
// it picks a recorded commit whose generation the clients have since seen
// superseded, and sends it again with CommitAs. Kafka's coordinator must
// refuse it (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID); the checker's
// stale-generation check flags one that was accepted.
type zombie struct {
	r        *run
	host     *sim.Node
	cluster  *client.Cluster
	consumer *client.Consumer
	clientID int
	replays  int
}

// startZombie starts the run's zombie when the run's first group consumer
// starts its first session, if the workload replays stale commits.
func startZombie(r *run) {
	if r.cfg.Workload.ZombieEvery <= 0 {
		return
	}
	z := &zombie{r: r, clientID: len(r.cfg.Producers) + len(r.cfg.Consumers) + 2}
	z.host = r.sched.AddNode("zombie", sim.NodeOptions{})
	cluster, err := client.NewCluster(z.host.Env(), client.ClusterConfig{Bootstrap: z.r.bootstrap(), ClientID: "zombie"})
	if err != nil {
		r.fail(fmt.Errorf("zombie: %w", err))
		return
	}
	cfg := client.DefaultConsumerConfig(groupName)
	cfg.AutoCommit, cfg.CommitOnRevoke = false, false
	consumer, err := client.NewConsumer(cluster, cfg)
	if err != nil {
		r.fail(fmt.Errorf("zombie: %w", err))
		return
	}
	z.cluster, z.consumer = cluster, consumer
	z.schedule()
}

// firstGroupConsumer reports whether c is the run's first group consumer.
func (c *consumerActor) firstGroupConsumer() bool {
	for i, spec := range c.r.cfg.Consumers {
		if spec.Group {
			return i == c.index
		}
	}
	return false
}

// schedule plans the next replay.
func (z *zombie) schedule() {
	every := z.r.cfg.Workload.ZombieEvery
	wait := z.r.around(every)
	z.host.AfterFunc(wait, func() {
		if z.r.phase == phaseDone {
			return
		}
		z.replay()
		z.schedule()
	})
}

// replay sends one stale commit again, if the history holds one.
func (z *zombie) replay() {
	now := int64(z.r.sched.Now())
	stale := staleCommits(z.r.recorder.ops, now)
	if len(stale) == 0 {
		return
	}
	old := z.r.recorder.ops[stale[z.r.rand.IntN(len(stale))]]
	member := *old.Group.Member
	z.replays++
	op := z.r.recorder.begin(checker.Op{
		Client: z.clientID, Process: z.replays, Kind: checker.KindCommit, Call: now,
		Topic: old.Topic, Partition: old.Partition,
		Group: &checker.Group{Group: groupName, Offset: old.Group.Offset, Member: &member},
	})
	offsets := []client.PartitionOffset{{Topic: old.Topic, Partition: old.Partition, Offset: old.Group.Offset}}
	membership := client.GroupMembership{MemberID: member.ID, Generation: member.Generation}
	z.consumer.CommitAs(membership, offsets, func(err error) {
		z.r.recorder.end(op, z.r.sched.Now(), commitOutcome(err))
	})
}

// staleCommits returns the commits among ops whose membership is stale by
// time now by the checker's rule (checker.checkStaleCommits): some commit
// carries a later generation whose SyncGroup was sent after the older
// generation's was answered, and answered before now.
func staleCommits(ops []checker.Op, now int64) []int {
	var handouts []checker.Member
	var commits []int
	for i := range ops {
		op := &ops[i]
		if op.Kind != checker.KindCommit || op.Group.Member == nil {
			continue
		}
		commits = append(commits, i)
		known := false
		for _, h := range handouts {
			known = known || h == *op.Group.Member
		}
		if !known {
			handouts = append(handouts, *op.Group.Member)
		}
	}
	var stale []int
	for _, i := range commits {
		m := ops[i].Group.Member
		for _, h := range handouts {
			if h.Generation > m.Generation && h.SyncCall > m.SyncReturn && h.SyncReturn < now {
				stale = append(stale, i)
				break
			}
		}
	}
	return stale
}
