package scenario

import (
	"fmt"
	"strings"
	"time"

	"github.com/kafkasim/kafkasim/checker"
	"github.com/kafkasim/kafkasim/client"
	"github.com/kafkasim/kafkasim/sim"
)

// Bounds of one read of a committed offset.
const (
	// commitReadTimeMax is how long one read may take before the reader
	// gives up on it (it then stays indefinite, which judges nothing).
	commitReadTimeMax = 5 * time.Second
	// commitReadPollInterval is how often the reader looks whether its
	// consumer has learned the committed offset. The read's recorded
	// return is when it looked, at most this much after the answer, which
	// only widens the read's window.
	commitReadPollInterval = 2 * time.Millisecond
)

// commitReader reads the group's committed offsets back (OffsetFetch), one
// round over every partition every so often, from the start of the
// clients until the run ends, and records each answer as a
// fetch-committed operation for the checker's lost-commit check. Reads
// while the broker restarts catch an acknowledged commit that did not
// survive; reads after healing catch one that was never stored.
type commitReader struct {
	r        *run
	host     *sim.Node
	cluster  *client.Cluster
	clientID int
	round    int
}

// startCommitReader starts the run's commit reader once, when the first
// group consumer starts, if the workload reads commits back.
func startCommitReader(r *run) {
	if r.recorder.commitReader != nil || r.cfg.Workload.CommitReadEvery <= 0 {
		return
	}
	cr := &commitReader{r: r, clientID: len(r.cfg.Producers) + len(r.cfg.Consumers) + 1}
	r.recorder.commitReader = cr
	cr.host = r.sched.AddNode("commit-reader", sim.NodeOptions{})
	cluster, err := client.NewCluster(cr.host.Env(), client.ClusterConfig{Bootstrap: cr.r.bootstrap(), ClientID: "commit-reader"})
	if err != nil {
		r.fail(fmt.Errorf("commit reader: %w", err))
		return
	}
	cr.cluster = cluster
	cr.schedule()
}

// schedule plans the next round.
func (cr *commitReader) schedule() {
	every := cr.r.cfg.Workload.CommitReadEvery
	wait := cr.r.around(every)
	cr.host.AfterFunc(wait, func() {
		if cr.r.phase == phaseDone {
			return
		}
		cr.readAll(func() {})
		cr.schedule()
	})
}

// readAll starts a round: one read of every partition. done runs once
// every read of the round has an answer or has given up.
func (cr *commitReader) readAll(done func()) {
	cr.round++
	pending := int(cr.r.cfg.Partitions)
	for p := range cr.r.cfg.Partitions {
		cr.read(client.TopicPartition{Topic: topicName, Partition: p}, func() {
			if pending--; pending == 0 {
				done()
			}
		})
	}
}

// readBackCommits reads every partition's committed offset once more and
// waits for the answers (each read gives up after commitReadTimeMax): the
// drain calls it once the consumers are done, so that the history ends
// with what the group's committed offsets finally are.
func (r *run) readBackCommits() error {
	cr := r.recorder.commitReader
	if cr == nil || cr.cluster == nil {
		return nil
	}
	finished := false
	cr.readAll(func() { finished = true })
	return r.runUntil(drainTimeMax, "reading the committed offsets back", func() bool { return finished })
}

// read asks for tp's committed offset with a consumer of the group that
// never joins it and never commits: assigned tp at its committed offset,
// it asks the coordinator (OffsetFetch) and takes the answer as its
// position, or reports that nothing is committed (auto.offset.reset=none).
func (cr *commitReader) read(tp client.TopicPartition, then func()) {
	op := cr.r.recorder.begin(checker.Op{
		Client: cr.clientID, Process: cr.round, Kind: checker.KindFetchCommitted, Call: int64(cr.r.sched.Now()),
		Topic: tp.Topic, Partition: tp.Partition, Group: &checker.Group{Group: groupName, Offset: -1},
	})
	done := false
	var consumer *client.Consumer
	finish := func(offset int64, outcome checker.Outcome) {
		if done {
			return
		}
		done = true
		defer then()
		if outcome != checker.OutcomeIndefinite {
			cr.r.recorder.end(op, cr.r.sched.Now(), outcome).Group.Offset = offset
		}
		if consumer != nil {
			consumer.Close(func() {})
		}
	}
	cfg := client.DefaultConsumerConfig(groupName)
	cfg.AutoCommit = false
	cfg.CommitOnRevoke = false
	cfg.AutoOffsetReset = client.ResetNone
	cfg.MaxPartitionBytes = 1 << 10
	cfg.MaxBytes = 1 << 10
	cfg.RequestTimeout = time.Second
	cfg.OnError = func(err error) {
		if strings.Contains(err.Error(), "no committed offset") {
			finish(-1, checker.OutcomeOK)
		}
	}
	consumer, err := client.NewConsumer(cr.cluster, cfg)
	if err == nil {
		err = consumer.Assign([]client.PartitionOffset{{Topic: tp.Topic, Partition: tp.Partition, Offset: client.OffsetCommitted}})
	}
	if err != nil {
		cr.r.fail(fmt.Errorf("commit reader: %w", err))
		then()
		return
	}
	deadline := cr.r.sched.Now() + commitReadTimeMax
	var look func()
	look = func() {
		if done {
			return
		}
		if offset, ok := consumer.Position(tp); ok {
			finish(offset, checker.OutcomeOK)
			return
		}
		if cr.r.sched.Now() >= deadline {
			finish(-1, checker.OutcomeIndefinite)
			return
		}
		cr.host.AfterFunc(commitReadPollInterval, look)
	}
	look()
}
