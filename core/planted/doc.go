// Package planted holds the switch for bugs planted on purpose.
//
// A defence counts only when the simulator catches its absence. Each such
// defence in the broker has a planted bug beside it, a one-line departure
// guarded by planted.Is("name"), that removes it. Normal builds compile
// every guard to false (planted_off.go), so the bugs cost nothing and cannot
// be switched on. Built with the tag `planted` and a bug's name linked in,
//
//	go test -tags planted -ldflags "-X github.com/kafkasim/kafkasim/core/planted.Bug=ack-before-sync" \
//	    ./sim/scenario -run TestPlantedBugIsCaught
//
// the named bug is live, and the test sweeps seeds with every fault until
// the checker reports the run failed. `.ci/planted-bugs` runs that for every
// bug in Bugs, so the simulator's power to catch each one cannot rot
// silently. docs/simulator.md lists the bugs and what catches them.
package planted

// Bugs lists every planted bug by name, with the defence it removes.
var Bugs = []struct{ Name, Removes string }{
	{"ack-before-sync", "acks=all and the high watermark wait for the group commit's fsync"},
	{"claim-late-appends", "a group-commit fsync claims only what was appended before it started"},
	{"ignore-failed-fsync", "a failed fsync fails the log and halts the node (fsyncgate)"},
	{"sequence-gap-of-one", "an idempotent producer's next batch must carry exactly the next sequence"},
	{"commit-before-store", "OffsetCommit is answered only once its record is durable"},
	{"retention-extra-segment", "size retention keeps at least retention.bytes"},
	{"time-lookup-batch-offset", "ListOffsets by time answers the record, not its batch (KIP-79)"},
	{"keep-records-below-fetch-offset", "a consumer drops the records of a fetched batch below its fetch offset"},
	{"duplicate-window-of-one", "the broker recognizes a retry of any of a producer's last 5 batches"},
	{"dup-before-durable", "an acks=all retry of a batch still in the purgatory waits for it, too"},
	{"stale-generation-commit", "the coordinator refuses an OffsetCommit from a generation the group has left behind"},
	{"read-skips-crc", "every batch read from storage is CRC-checked before it is served"},
	{"recovery-cuts-corruption", "recovery reports an invalid batch where valid data must be, instead of cutting the log there"},
	{"recovery-skips-crc", "recovery accepts a batch only when its CRC matches"},
	{"fetch-above-high-watermark", "a fetch serves nothing above the high watermark (in durable mode, nothing whose fsync has not completed)"},
	{"send-before-persist", "a metadata quorum node sends a Ready's messages (votes, Fetch offsets) only once its state is durable"},
	{"lead-while-fenced", "a cluster broker serves a partition as leader only while the controller has it unfenced, never on a stale metadata view"},
	{"high-watermark-ignores-followers", "a leader's high watermark waits for every member of the maximal ISR"},
	{"truncate-to-high-watermark", "a follower truncates only to the divergence point its leader names, never to its own high watermark on becoming a follower (KIP-101)"},
	{"unclean-without-config", "the controller elects a leader from outside the ISR and ELR only where unclean.leader.election.enable allows it"},
	{"repair-in-service", "a damaged replica is emptied for its repair only on a caught-up view (unfenced) that has it out of the ISR and the ELR"},
	{"retention-counts-uncommitted", "size retention counts only the bytes below the high watermark, never an uncommitted tail a leader change may take away"},
}

// SeedsNeeded gives the bugs of Bugs that the sweep's default seed budget
// misses the budget that catches them: the planted-bug test sweeps at
// least that many. retention-counts-uncommitted is first caught by seed
// 273 (premature-deletion: an out-of-range reset judged at its time).
var SeedsNeeded = map[string]int{
	"retention-counts-uncommitted": 400,
}

// Blind lists planted bugs that sweeps do not catch yet: each is a blind
// spot of the workload or the checker, named with what it would take.
// .ci/planted-bugs does not sweep them; a bug moves to Bugs once a sweep
// catches it. Is accepts their names too.
var Blind = []struct{ Name, Removes, Needs string }{
	{"wait-out-a-shrunk-isr", "acks=all writes waiting when the ISR shrinks below min.insync.replicas are answered NOT_ENOUGH_REPLICAS_AFTER_APPEND at once",
		"nothing a sweep can see: without it they time out, which is indefinite too; TestReplicationNotEnoughReplicasAfterAppend catches it"},
	{"isr-proposal-dropped-on-stale-epoch", "an ISR change the controller answers INVALID_UPDATE_VERSION stays in the maximal ISR until the leader's image moves past it",
		"a larger sweep than CI's 200 seeds: it failed seed 60620 of 60000..60999; the regression seed60620-all-cluster fails with it"},
	{"high-watermark-below-min-isr", "a leader's high watermark stands still while the ISR is smaller than min.insync.replicas (KIP-966)",
		"a way for a client to see the loss: the controller keeps the last ISR member in the ISR and never fills the ELR on a shrink, " +
			"so when the last replica standing loses what it committed alone the partition goes leaderless, or to an unclean election " +
			"whose loss the checker excuses; a fault that cut a leader off from its followers until it stood alone and then damaged it " +
			"caught nothing in 400 swarmed seeds (session 8); the scripted TestKIP966LastReplicaStanding catches it"},
	{"isr-join-stale-broker-epoch", "a follower joins the ISR only at its broker's current epoch (KIP-903)",
		"nothing the simulator can reach: the controller refuses the same stale member (INELIGIBLE_REPLICA, alter_partition.go), " +
			"so this is defence in depth; TestReplicationStaleBrokerEpochDoesNotRejoinTheISR catches it and shows the controller's check too"},
}
