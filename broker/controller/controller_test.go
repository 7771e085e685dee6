package controller

import (
	"errors"
	"testing"

	"github.com/kafkasim/kafkasim/broker/metadata"
	"github.com/kafkasim/kafkasim/broker/raft"
	"github.com/kafkasim/kafkasim/core"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestProposeErrors makes the Proposer refuse a create: NOT_CONTROLLER when
// the node no longer leads, REQUEST_TIMED_OUT when too much awaits commit.
// The refused topic must leave no trace in the working image: the same
// create succeeds once the Proposer accepts again.
func TestProposeErrors(t *testing.T) {
	cases := []struct {
		err  error
		want *kerr.Error
	}{
		{raft.ErrNotLeader, kerr.NotController},
		{raft.ErrTooManyUncommitted, kerr.RequestTimedOut},
		{errors.New("disk on fire"), kerr.RequestTimedOut},
	}
	for _, c := range cases {
		t.Run(c.err.Error(), func(t *testing.T) {
			h := newHarness(t, nil)
			h.brokers(1)
			h.raft.err = c.err
			requireCode(t, "refused", h.do(createTopic("a", 1, 1)).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode, c.want)
			h.raft.err = nil
			requireCode(t, "retried", h.do(createTopic("a", 1, 1)).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode, nil)
		})
	}
}

// TestAnswersWaitForCommit checks that a request that proposes is answered
// only after its entry commits, that a request proposing nothing waits for
// the entries before it (its answer may depend on them), and that with
// nothing pending such a request is answered at once.
func TestAnswersWaitForCommit(t *testing.T) {
	h := newHarness(t, nil)
	h.brokers(1)
	idle := h.handle(heartbeat(1, h.broker(1).Epoch, h.committed.AppliedOffset()))
	if len(idle.responses) != 1 {
		t.Fatal("a heartbeat with nothing pending was not answered at once")
	}
	created := h.handle(createTopic("a", 1, 1))
	exists := h.handle(createTopic("a", 1, 1))
	if len(created.responses)+len(exists.responses) != 0 {
		t.Fatal("answered before commit")
	}
	if proposals, requests := h.c.Pending(); proposals != 1 || requests != 2 {
		t.Fatalf("pending %d proposals and %d requests, want 1 and 2", proposals, requests)
	}
	h.commit()
	if len(created.responses) != 1 || len(exists.responses) != 1 {
		t.Fatal("not answered once after commit")
	}
}

// TestDeactivateAnswersNotController deactivates with requests waiting:
// each gets NOT_CONTROLLER once, nothing is answered again when their
// entries later commit under the next leader, an inactive controller
// answers NOT_CONTROLLER at once, and a reactivated one decides from the
// committed image.
func TestDeactivateAnswersNotController(t *testing.T) {
	h := newHarness(t, nil)
	h.brokers(1)
	waiting := h.handle(createTopic("a", 1, 1))
	h.c.Deactivate()
	if len(waiting.responses) != 1 {
		t.Fatalf("answered %d times at deactivation, want once", len(waiting.responses))
	}
	requireCode(t, "pending", waiting.responses[0].(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode, kerr.NotController)
	inactive := h.handle(createTopic("b", 1, 1))
	requireCode(t, "inactive", inactive.responses[0].(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode, kerr.NotController)
	h.commit() // the next leader commits the entry after all
	if len(waiting.responses) != 1 {
		t.Fatal("a request was answered twice")
	}
	if err := h.committed.Apply(h.raft.next, 3, nil); err != nil {
		t.Fatal(err)
	}
	h.raft.next, h.raft.epoch = h.raft.next+1, 3
	h.c.Activate(h.now)
	requireCode(t, "after reactivation", h.do(createTopic("a", 1, 1)).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode, kerr.TopicAlreadyExists)
}

// TestAppliedFromAnotherEpochDeactivates: entries of a later epoch reaching
// the committed image mean another leader; the controller steps down and
// answers what waited with NOT_CONTROLLER.
func TestAppliedFromAnotherEpochDeactivates(t *testing.T) {
	h := newHarness(t, nil)
	h.brokers(1)
	waiting := h.handle(createTopic("a", 1, 1))
	h.raft.entries = nil
	if err := h.committed.Apply(h.raft.next, 3, nil); err != nil {
		t.Fatal(err)
	}
	h.c.Applied(h.now)
	if h.c.Active() || len(waiting.responses) != 1 {
		t.Fatalf("active %t, answers %d", h.c.Active(), len(waiting.responses))
	}
	requireCode(t, "pending", waiting.responses[0].(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode, kerr.NotController)
}

// TestWorkingImageMustMatchCommitted commits an entry the controller never
// proposed: when its own proposals are all committed, the working image
// differs from the committed one and the controller must stop (panic).
func TestWorkingImageMustMatchCommitted(t *testing.T) {
	h := newHarness(t, nil)
	h.brokers(1)
	h.handle(createTopic("a", 1, 1))
	entry := h.raft.entries[0]
	h.raft.entries = nil
	sneaked := metadata.Encode(&metadata.BatchRecord{Records: []metadata.Record{&metadata.TopicRecord{Name: "sneaked", ID: metadata.TopicID{5}}}})
	if err := h.committed.Apply(entry.offset, entry.epoch, sneaked); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("a working image that differs from the committed image went unnoticed")
		}
	}()
	h.c.Applied(h.now)
}

// TestNewRefusesBadConfiguration lists configurations New must refuse.
func TestNewRefusesBadConfiguration(t *testing.T) {
	cases := map[string]func(config *Config){
		"no rand":                    func(config *Config) { config.Rand = nil },
		"no session timeout":         func(config *Config) { config.SessionTimeout = 0 },
		"no partitions":              func(config *Config) { config.DefaultPartitions = 0 },
		"no replication factor":      func(config *Config) { config.DefaultReplicationFactor = 0 },
		"rebalance without interval": func(config *Config) { config.AutoLeaderRebalance, config.LeaderImbalanceCheckInterval = true, 0 },
	}
	for _, name := range []string{"no rand", "no session timeout", "no partitions", "no replication factor", "rebalance without interval"} {
		config := testConfig()
		config.Rand = core.NewRand(1)
		cases[name](&config)
		if _, err := New(config, metadata.NewImage(), &fakeRaft{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestServes lists the API keys Handle answers.
func TestServes(t *testing.T) {
	for _, key := range []kmsg.Key{kmsg.BrokerRegistration, kmsg.BrokerHeartbeat, kmsg.CreateTopics, kmsg.DeleteTopics, kmsg.CreatePartitions,
		kmsg.ElectLeaders, kmsg.IncrementalAlterConfigs, kmsg.AllocateProducerIDs, kmsg.AlterPartition} {
		if !Serves(key.Int16()) {
			t.Errorf("does not serve %v", key)
		}
	}
	if Serves(kmsg.Produce.Int16()) {
		t.Error("serves Produce")
	}
}

// TestAnswerCallbackMaySendTheNextRequest has a broker heartbeat from
// inside the callback that delivers its registration, as a host that
// answers synchronously does: the heartbeat is decided and proposed while
// Applied is still answering, and neither the working-image check nor the
// answer bookkeeping may trip over it.
func TestAnswerCallbackMaySendTheNextRequest(t *testing.T) {
	h := newHarness(t, nil)
	var heartbeatAnswers []kmsg.Response
	request := kmsg.NewPtrBrokerRegistrationRequest()
	request.BrokerID, request.ClusterID = 1, "cluster"
	h.c.Handle(h.now, request, func(response kmsg.Response) {
		epoch := response.(*kmsg.BrokerRegistrationResponse).BrokerEpoch
		h.c.Handle(h.now, heartbeat(1, epoch, h.committed.AppliedOffset()), func(response kmsg.Response) {
			heartbeatAnswers = append(heartbeatAnswers, response)
		})
	})
	h.commit()
	h.commit()
	if len(heartbeatAnswers) != 1 || heartbeatAnswers[0].(*kmsg.BrokerHeartbeatResponse).IsFenced {
		t.Fatalf("heartbeat answers %+v, want one that unfences", heartbeatAnswers)
	}
}
