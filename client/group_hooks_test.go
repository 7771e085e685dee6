package client

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
)

// TestLiveMembershipHooksAndStaleCommit runs group members over kfake
// (franz-go's fake Kafka, an implementation independent of ours): the
// SyncGroup hook reports the membership the member then commits with, the
// commit hook reports the member's auto-commits with that membership and
// their outcome, and once a second member's join has moved the group to a
// later generation, a commit under the first membership is refused as
// Kafka refuses a zombie's (ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID): the
// rule the checker's stale-generation check relies on.
func TestLiveMembershipHooksAndStaleCommit(t *testing.T) {
	le := newLiveEnv(t, kfake.SeedTopics(2, "h"))
	le.produce(DefaultProducerConfig(), "h", "v", 20)
	var synced []GroupMembership
	var committed []GroupMembership
	var outcomes []error
	var first *Consumer
	le.do(func() {
		cfg := DefaultConsumerConfig("hooks")
		cfg.AutoOffsetReset = ResetEarliest
		cfg.HeartbeatInterval = 100 * time.Millisecond
		cfg.SessionTimeout = 6 * time.Second
		cfg.RebalanceTimeout = 5 * time.Second
		cfg.AutoCommitInterval = 50 * time.Millisecond
		cfg.OnSyncGroup = func(m GroupMembership) func(error) {
			return func(err error) {
				if err == nil {
					synced = append(synced, m)
				}
			}
		}
		cfg.OnCommit = func(_ []PartitionOffset, m GroupMembership) func(error) {
			committed = append(committed, m)
			return func(err error) { outcomes = append(outcomes, err) }
		}
		c, err := NewConsumer(le.cluster, cfg)
		if err != nil {
			t.Error(err)
			return
		}
		first = c
		if err := c.Subscribe([]string{"h"}); err != nil {
			t.Error(err)
		}
		var loop func([]Record)
		loop = func([]Record) { _ = c.Poll(loop) }
		_ = c.Poll(loop)
	})
	okCommit := func() bool {
		for _, err := range outcomes {
			if err == nil {
				return true
			}
		}
		return false
	}
	waitFor(t, le, func() bool { return len(synced) > 0 && okCommit() })
	var old GroupMembership
	le.do(func() {
		old = synced[0]
		if got := first.Membership(); got != old || old.MemberID == "" || old.Generation < 0 {
			t.Errorf("Membership() = %+v, want the synced %+v", got, old)
		}
		for _, m := range committed {
			if m != old && m.Generation <= old.Generation {
				t.Errorf("auto-commit carried %+v, not the synced %+v or a later one", m, old)
			}
		}
	})
	second := le.startGroupMember("hooks", "h")
	waitFor(t, le, func() bool { return len(second.c.Assigned()) > 0 })
	var refused error
	le.wait(func(done func()) {
		second.c.CommitAs(old, []PartitionOffset{{Topic: "h", Partition: 0, Offset: 1}}, func(err error) {
			refused = err
			done()
		})
	})
	if !errors.Is(refused, kerr.IllegalGeneration) && !errors.Is(refused, kerr.UnknownMemberID) {
		t.Fatalf("commit under the superseded membership %+v: err = %v, want ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID", old, refused)
	}
}
