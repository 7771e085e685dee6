package scenario

import (
	"github.com/kafkasim/kafkasim/checker"
	"github.com/kafkasim/kafkasim/client"
)

// configureMember gives a consumer its member spec (how it commits on its
// own and how many records a poll delivers) and the hooks that record
// what the checker's commit checks need: every commit the client makes on
// its own (auto-commit, commit on revoke, commit on Close), exactly as the
// workload's explicit commits are recorded, and every membership a
// SyncGroup answer confirmed, which the commits then carry.
func (c *consumerActor) configureMember(cfg *client.ConsumerConfig) {
	if c.handouts == nil {
		c.handouts = make(map[client.GroupMembership]checker.Member)
	}
	if members := c.r.cfg.Workload.Members; len(members) > 0 {
		m := members[c.index%len(members)]
		if m.AutoCommitInterval > 0 {
			cfg.AutoCommit, cfg.AutoCommitInterval = true, m.AutoCommitInterval
		}
		cfg.CommitOnRevoke = m.CommitOnRevoke
		if m.MaxPollRecords > 0 {
			cfg.MaxPollRecords = m.MaxPollRecords
		}
	}
	session := c.session
	cfg.OnSyncGroup = func(member client.GroupMembership) func(error) {
		call := int64(c.r.sched.Now())
		return func(err error) {
			if err == nil {
				c.handouts[member] = checker.Member{
					ID: member.MemberID, Generation: member.Generation, SyncCall: call, SyncReturn: int64(c.r.sched.Now()),
				}
			}
		}
	}
	cfg.OnCommit = func(offsets []client.PartitionOffset, member client.GroupMembership) func(error) {
		return c.recordCommit(session, offsets, member)
	}
}

// handout returns the recorded membership member, as a SyncGroup answer
// confirmed it, or nil when none did (no generation, or one only a
// JoinGroup answer handed out so far).
func (c *consumerActor) handout(member client.GroupMembership) *checker.Member {
	h, ok := c.handouts[member]
	if !ok || member.Generation < 0 {
		return nil
	}
	return &h
}

// scheduleRejoin plans the session's rejoin, if the workload rejoins.
func (c *consumerActor) scheduleRejoin() {
	every := c.r.cfg.Workload.RejoinEvery
	if every <= 0 {
		return
	}
	session := c.session
	wait := c.r.around(every)
	c.host.AfterFunc(wait, func() { c.rejoin(session) })
}

// rejoin closes the session's consumer, which commits on Close when its
// member spec commits on its own and leaves the group (a rebalance that
// ends the generation), then starts a new session that joins as a new
// member. Only during the safety phase: healing wants the group stable.
func (c *consumerActor) rejoin(session int) {
	if c.session != session || c.r.phase != phaseSafety || c.consumer == nil {
		return
	}
	consumer, cluster := c.consumer, c.cluster
	c.session++ // the old session's callbacks now do nothing
	consumer.Close(func() {
		cluster.Close()
		if c.host.Alive() && c.r.phase != phaseDone {
			c.start()
		}
	})
}
