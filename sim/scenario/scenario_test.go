package scenario

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kafkasim/kafkasim/sim"
)

// TestSameSeedReplaysByteForByte runs whole simulations twice and compares
// the hash of every event and the recorded history: a seed must fix the
// run completely, faults included. Different seeds must differ.
func TestSameSeedReplaysByteForByte(t *testing.T) {
	faults, _ := ParseFaults(singleBrokerFaults)
	hashes := map[string]uint64{}
	for _, seed := range []uint64{1, 2, 3} {
		first := Run(Derive(seed, faults), Options{})
		second := Run(Derive(seed, faults), Options{})
		if first.TraceHash != second.TraceHash {
			t.Fatalf("seed %d: trace hashes differ: %s vs %s", seed, first.TraceHash, second.TraceHash)
		}
		a, _ := json.Marshal(first.History)
		b, _ := json.Marshal(second.History)
		if !bytes.Equal(a, b) {
			t.Fatalf("seed %d: histories differ", seed)
		}
		if !sameQuorumHistory(first, second) {
			t.Fatalf("seed %d: quorum histories differ", seed)
		}
		if other, ok := hashes[first.TraceHash]; ok {
			t.Fatalf("seeds %d and %d gave the same trace", other, seed)
		}
		hashes[first.TraceHash] = seed
	}
}

// TestDiskStallReplaysByteForByte replays the first seed whose run stalled
// the broker's disk: that fault fails the power in reaction to what the
// producers were answered, so it must be as deterministic as the rest.
func TestDiskStallReplaysByteForByte(t *testing.T) {
	faults, _ := ParseFaults(singleBrokerFaults)
	for seed := uint64(1); seed <= 50; seed++ {
		first := Run(Derive(seed, faults), Options{})
		if first.Stats.IO.Stalled == 0 {
			continue
		}
		second := Run(Derive(seed, faults), Options{})
		a, _ := json.Marshal(first.History)
		b, _ := json.Marshal(second.History)
		if first.TraceHash != second.TraceHash || !bytes.Equal(a, b) {
			t.Fatalf("seed %d: a run with a disk stall did not replay (trace %s vs %s)", seed, first.TraceHash, second.TraceHash)
		}
		return
	}
	t.Fatal("no seed in 1..50 stalled the disk")
}

// sweep runs seeds first..first+count-1 with faults and fails on every seed
// whose verdict is not OK, naming the command that reproduces it. It
// returns how many runs checked each group delivery promise.
func sweep(t *testing.T, faultList string, first uint64, count int) map[string]int {
	t.Helper()
	faults, err := ParseFaults(faultList)
	if err != nil {
		t.Fatal(err)
	}
	promises := map[string]int{}
	for seed := first; seed < first+uint64(count); seed++ {
		result := Run(Derive(seed, faults), Options{})
		for _, g := range result.History.Groups {
			promises[g.Delivery]++
		}
		if !result.Passed() {
			t.Errorf("seed %d: %s\nreproduce: go run ./cmd/sim --seed %d --faults %s", seed, result.Verdict(), seed, faults)
		}
		if len(result.History.Ops) == 0 {
			t.Errorf("seed %d: the run recorded no operations", seed)
		}
	}
	return promises
}

// TestSeedsWithoutFaults checks the workload and the checker agree on
// fault-free runs: anything failing here is a bug in the broker, the
// clients, or the harness itself.
func TestSeedsWithoutFaults(t *testing.T) { sweep(t, "none", 1, 10) }

// singleBrokerFaults is every fault but the cluster's: the runs "all"
// made before clusters existed, seed for seed (Derive draws the cluster
// from its own stream).
const singleBrokerFaults = "bitflips,clients,clock,corruption,crash,disk-errors,disk-full,network,pause,powerloss,retention"

// TestSeedsWithFaults sweeps single-broker seeds with every fault class
// (cluster_test.go sweeps clusters), and requires both group delivery
// promises to have been checked in the sweep.
func TestSeedsWithFaults(t *testing.T) {
	promises := sweep(t, singleBrokerFaults, 1, 300)
	if promises["at-most-once"] == 0 || promises["at-least-once"] == 0 {
		t.Errorf("delivery promises checked: %v; want both", promises)
	}
}

// TestSeedsWithDiskFaults sweeps seeds with only the disk and process
// faults, which derives different runs than "all" and lets storage faults
// strike without network noise around them.
func TestSeedsWithDiskFaults(t *testing.T) {
	sweep(t, "crash,powerloss,disk-errors,disk-full,bitflips", 1, 100)
}

// TestRegressions replays the exact configurations of runs that once
// failed (testdata/regressions, saved as Derive produced them then, so that
// later changes to Derive cannot quietly turn them into other runs):
//
//   - seed4-bitflips: a flipped base offset reached a consumer (the broker
//     now checks the headers it serves);
//   - seed23-bitflips: a flipped control flag made a consumer skip a batch
//     (the client now checks the CRC before trusting any header field);
//   - seed350-all: a bit flipped on reading the topic catalog made startup
//     delete the topic's directories, losing every acknowledged record (the
//     catalog is checksummed; unexplained directories are set aside);
//   - seed292-all: the drain never finished, for the same reason;
//   - seed5088-retention, seed5135-retention: an idempotent retry was
//     stored twice after retention deleted its original and the broker
//     restarted (the producer table is now snapshotted before retention);
//   - seed5516-retention: a consumer skip that no longer occurs;
//   - seed5058-retention: an at-least-once group was blamed for records
//     that retention deleted before it reached them, and retention deleted
//     __consumer_offsets segments (no longer subject to retention);
//   - seed12517-retention: a partition reassigned while a poll was pending
//     was recorded with a stale position (the harness now records where
//     the consumer restarted);
//   - seed80-all, seed710-all: damage at rest that the producer-state
//     replay read at startup failed every boot, so healing never ended
//     (such a partition now opens offline);
//   - seed1361-all, seed710-all: a partition leader epoch changed at rest
//     failed every read of the startup scan as a passing inconsistency,
//     failing every boot (four failed reads now mean damage);
//   - seed602224-all, seed603343-all: a group's offset commits completed
//     out of order (a panic), when an append's inline sync completed a
//     waiter that appended again before the outer append started to wait
//     (waiters now complete in offset order);
//   - seed700951-all: retention deleted both partitions whole, so the
//     drain started at their end and waited forever for records (it now
//     counts its position and records an empty final poll);
//   - seed901423-corruption: retention deleted a damaged batch's segment
//     and the checker called its absence damage skipped silently (it now
//     excuses damaged records below the legal log start);
//   - seed912230-diskfull: an acks=1 write answered just before healing
//     waited on a slow fsync, and the drain read the end offsets before it
//     was durable and called it lost (the drain now waits, within a bound,
//     for the ends to pass every promised write);
//   - seed913354-pause: while two idempotent batches waited for their
//     retry (their requests had timed out against a paused broker), the
//     batches behind them were acknowledged and newer ones sent, six
//     batches past them, so the broker refused the retries as outside its
//     5-batch window although they were in the log (the producer now never
//     sends 5 or more batches past its partition's oldest unresolved one);
//   - seed1-all-cluster: a three-node cluster whose restarted brokers were
//     refused re-registration while their crashed processes' sessions
//     lived on; the heal looked only at the committed registrations, which
//     were the dead processes', so the drain began while no broker served
//     and recorded every partition unreadable (the heal now waits for each
//     running process's own registration);
//   - seed16-all-cluster: two brokers of a cluster handed out the same
//     producer id from their own counters, so one producer's batches were
//     taken for duplicates of another's (ids now come in blocks the
//     controller commits, AllocateProducerIds);
//   - seed170-all-cluster: a bit flipped on reading the metadata log at a
//     restart was taken for a torn tail, and a voter cut away synced,
//     committed entries that a later leader then overwrote (a segment read
//     that ends early is now read again);
//   - seed196-all-cluster: a node clock stepped back by hours kept the
//     active controller's broker sessions alive forever, so restarted
//     brokers were refused as duplicates (the controller's clock is now its
//     ticker's);
//   - seed1002898-all-cluster: the line from a broker to the controller
//     judged a peer silent by the wall clock, which a clock fault stepped
//     back, so a dead connection kept the broker's heartbeat waiting forever
//     and it was never unfenced (the watchdog now counts answers);
//   - seed1000297-all-cluster: a leader deposed in epoch 3 advanced its high
//     watermark after epoch 4's leader had committed more, which the quorum
//     checker took for a high watermark going back (it now judges the
//     newest leader's, as Kafka's simulation does);
//   - seed2002983-all: an offsets append failed on a full disk, the failed
//     log answered the earlier append at once, its answer ran the
//     connection's next commit, whose failure then overtook the first
//     one's (the failure is now queued before the log's failure takes
//     effect);
//   - seed5003810-all-cluster: a bit flipped on reading a metadata log
//     batch's leader epoch, which lies outside the batch's CRC, gave a
//     restarted controller an entry of epoch 0 after a snapshot of epoch 1,
//     a Raft panic (the epoch is now repeated in the record's key);
//   - seed20557-all-cluster: a new leader had not assigned its epoch in
//     its epoch cache, so a follower that had fetched an epoch newer than
//     every batch there got an unknown divergence and fetched the same
//     offset forever, and the partition kept answering OFFSET_NOT_AVAILABLE
//     after the heal (a new leader now assigns its epoch's start);
//   - seed30346-all-cluster: a leader answered a follower's Fetch whose
//     read came back with a bit flipped by sending it into backoff, so on
//     a disk that flips often its followers never caught up again (the
//     read is now repeated at once);
//   - seed20256-all-cluster: the end read after healing was a new leader's
//     high watermark, held at its epoch's start until its ISR grew; the
//     drain read on to the log end, and retention then cut, legally,
//     records that no member of the at-least-once group had reached, so a
//     member with nothing committed started past them. The checker called
//     them unprocessed: its legal log start stopped at that end and
//     counted the acknowledged records past it twice (since 2ede1bd the
//     run no longer takes this turn);
//   - seed50349-all-cluster, seed50593-all-cluster: a restarted broker
//     repaired a damaged replica on a stale view of the metadata, replayed
//     from before the replica joined the ISR, so an empty replica that the
//     ISR still counted was elected and what was committed was lost
//     (a repair now waits until the broker is unfenced; they fail with the
//     planted bug repair-in-service);
//   - seed60620-all-cluster: a leader whose AlterPartition was answered
//     INVALID_UPDATE_VERSION dropped the proposal, although the controller
//     had committed that very change (its first answer was lost): counting
//     the stale ISR, it acknowledged writes the new member lacked, and that
//     member's election lost them (the proposal now stays pending until
//     the image moves; it fails with isr-proposal-dropped-on-stale-epoch);
//   - seed70453-all-cluster: a bit flipped anywhere in a follower's large
//     read failed all of it, and on a disk that flips often the follower
//     never caught up (a read now hands out the batches before the flip);
//   - seed80551-all-cluster: a follower's batch had its leader epoch
//     changed at rest, outside the CRC; nothing reported it and it stayed
//     diverged below the high watermark (the scrubber now checks epochs
//     against the epoch cache, and the replica is repaired);
//   - seed48-all-cluster: a deposed leader, told by a new leader whose
//     retention had deleted the old epochs that its epoch ended at that
//     leader's log start, kept its own suffix below it, diverged from the
//     other replicas below the high watermark (it now starts over at the
//     leader's log start);
//   - seed100250-all-cluster: a consumer reset past records an old
//     leader's retention had deleted, and a replica that had missed that
//     retention led later with them back; the recorder did not mark the
//     reset, and the checker saw a poll skip (followers now follow the
//     leader's log start, and an OFFSET_OUT_OF_RANGE reset is recorded);
//   - seed101572-all-cluster: a deposed leader answered a lookup by time
//     with no record, on its stale high watermark, which the checker took
//     for a wrong answer (such answers are not judged in a cluster);
//   - seed201364-all-cluster: the only in-sync replica was damaged and
//     kept its place offline, as designed, and the checker judged its
//     copy (a damaged only in-sync replica is not judged now);
//   - seed600614-all-cluster: a damaged replica's repair renamed its
//     directory aside and then failed to sync the parent; every retry
//     renamed again, found nothing to rename, and the replica stayed
//     empty and offline after healing (a retry now only syncs);
//   - seed700545-all, seed700636-all, seed700851-all (the first swarm
//     sweep): disk errors without power loss, where a failed fsync
//     dropped the pages of acks=1 and caching-mode writes already
//     acknowledged; the simulator promised them durable (disk errors that
//     may drop pages now count like power loss in its promise table);
//   - seed593-all, seed500067-all, seed1200253-all (swarm sweeps): the
//     simulator damaged the batch of an idempotent producer's record,
//     whose successor stayed acknowledged, and the sequence-gap check
//     called the excused predecessor missing (it now excuses damage, and
//     an unclean election, as lost-write does);
//   - seed4-all-cluster-swarm: after healing, the at-least-once group did
//     not process the progress probe's records: its coordinator refused
//     commits of partitions it did not lead, and each commit waited out a
//     follower's fetch wait;
//   - seed153-all-cluster-swarm: after an unclean election a member reset
//     past the new log end and committed lower offsets than the group's
//     commit from before the election, read back after it (commits and
//     read-backs of the old branch no longer order later commits);
//   - seed599-all-cluster-swarm: a follower whose fetch of one partition
//     kept failing (its leader's copy offline) backed off its whole
//     fetcher, __consumer_offsets too, so every commit took seconds and
//     the group missed the probe's bound (only that partition waits now);
//   - seed1401335-all-swarm: the probe's write to a partition was
//     acknowledged just before the scrubber found the partition damaged
//     and took it offline, as designed on a single broker, and the group
//     check still waited for the record (it now excuses damaged
//     partitions, as the write check does);
//   - seed1401422-all-cluster-swarm: the network dropped the answer to a
//     consumer's ApiVersions handshake, and the client had no setup
//     timeout: the connection to the coordinator stayed half set up and
//     every JoinGroup queued behind it until the end of the run (the
//     client now gives a connection up after
//     socket.connection.setup.timeout.ms);
//   - seed1401836-all-cluster-swarm: a leader's retention deleted offsets
//     120..152, counting a tail no follower had; a member reset past
//     them, and the next leader, which had missed that retention, still
//     held them. The checker took the legal log start from the drain
//     alone, since it made log.retention.bytes on its own, and called
//     them unprocessed (retention now counts only the bytes below the
//     high watermark, and the checker adds the bytes a tail loss may have
//     taken also when the drain alone makes log.retention.bytes);
//   - seed1500389-all-cluster-swarm: a follower's roll synced its full
//     segment and then failed to write the index files on a full disk;
//     with nothing left to fsync no group commit started again, the
//     durable end stayed below the log end, and the fetcher, which waits
//     for it, never fetched again (a job now starts whenever the durable
//     end is below the log end);
//   - seed1701217-all-cluster-swarm: a partitioned leader that had not
//     heard of its successor refused six retries with
//     OUT_OF_ORDER_SEQUENCE_NUMBER, batches only the successor held, and
//     the checker called them refused retries (in a cluster it now judges
//     a refusal only against batches appended in the refusing broker's
//     epoch or before);
//   - seed1700078-all-cluster-swarm: after healing a member reset to the
//     log start and, committing after every record, worked through about
//     a thousand records at one commit round trip each before the probe's:
//     the group kept processing, but not within 60 s (the probe now fails
//     a group only when it processes nothing for 60 s, or has not reached
//     the probe's records within 10 minutes);
//   - seed1800732-all-cluster-swarm: retention started a log at offset 14
//     while it held enough, then an allowed unclean election lost offsets
//     14..56, which retention had counted, and the checker called the
//     drained log's start premature (an unclean partition's legal log
//     start is now its drain's start, as after a tail loss);
//   - seed1900443-all-cluster-swarm: a lookup by time answered from a
//     leader whose log started at 519, while the final drain, from a
//     replica that had missed that retention, began at 86; the checker
//     held the lookup to the final log's start (lookups are now judged
//     against where the log may have started when they ran);
//   - seed1900567-all-swarm: retention deleted the probe's record before
//     the at-least-once group reached it, and the member reset past it
//     to the log start; the probe waited for it (a record a member was
//     reset past is now excused);
//   - seed1901378-all-cluster-swarm: the controller never answered a
//     broker's AllocateProducerIds while it answered the broker's other
//     requests on the same line, and the broker waited for its producer
//     id block for good: every InitProducerID was answered
//     COORDINATOR_LOAD_IN_PROGRESS and the probe's idempotent write
//     failed (a request to the controller now ends within its budget).
//     The request had never arrived: a blackhole dropped its frame and
//     the connection carried the later ones after the heal, a gap TCP
//     never leaves; blackholes now hold frames until the heal.
func TestRegressions(t *testing.T) {
	paths, err := filepath.Glob("testdata/regressions/*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no regression configurations: %v", err)
	}
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var cfg Config
		if err := json.Unmarshal(data, &cfg); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		result := Run(cfg, Options{})
		if !result.Passed() {
			t.Errorf("%s: %s", path, result.Verdict())
		}
	}
}

// TestLinesNameEveryOption checks that the printed options describe the
// run: the seed, the faults, and one line per producer and consumer.
func TestLinesNameEveryOption(t *testing.T) {
	faults, _ := ParseFaults("all")
	cfg := Derive(5, faults)
	text := strings.Join(cfg.Lines(), "\n")
	for _, want := range []string{"seed=5", "faults=all", "partitions=", "producer.0=", "fault.crash.every="} {
		if !strings.Contains(text, want) {
			t.Errorf("options lack %q:\n%s", want, text)
		}
	}
	if got := strings.Count(text, "producer."); got != len(cfg.Producers) {
		t.Errorf("%d producer lines for %d producers", got, len(cfg.Producers))
	}
}

// TestParseFaults checks the --faults syntax and its errors.
func TestParseFaults(t *testing.T) {
	if f, err := ParseFaults("none"); err != nil || f.String() != "none" {
		t.Fatalf("none: %v %v", f, err)
	}
	if f, err := ParseFaults("all"); err != nil || f.String() != "all" {
		t.Fatalf("all: %v %v", f, err)
	}
	if f, err := ParseFaults("crash,network"); err != nil || f.String() != "crash,network" {
		t.Fatalf("list: %v %v", f, err)
	}
	if f, _ := ParseFaults(singleBrokerFaults); len(f.names()) != len(AllFaults)-2 || f[FaultCluster] || f[FaultPartition] {
		t.Fatalf("the single-broker faults are %v", f)
	}
	if f, _ := ParseFaults("all"); !f[FaultRetention] || len(f.names()) != len(AllFaults) {
		t.Fatalf("all is %v", f)
	}
	if f, err := ParseFaults("retention"); err != nil || f.String() != "retention" {
		t.Fatalf("retention: %v %v", f, err)
	}
	if _, err := ParseFaults("crash,meteor"); err == nil || !strings.Contains(err.Error(), `"meteor"`) {
		t.Fatalf("unknown fault: %v", err)
	}
}

// TestBrokenPromiseIsCaught proves the pipeline can fail: with power loss
// but no flush before acknowledgements, acknowledged writes do vanish; the
// run is told they were promised durable, and the checker must report
// lost writes for some seed.
func TestBrokenPromiseIsCaught(t *testing.T) {
	faults, _ := ParseFaults("powerloss")
	caught := 0
	for seed := uint64(1); seed <= 10; seed++ {
		cfg := Derive(seed, faults)
		cfg.FlushPerMessage = false
		cfg.promiseDurable = true
		result := Run(cfg, Options{})
		if strings.Contains(result.Verdict(), "lost-write") {
			caught++
			break
		}
	}
	if caught == 0 {
		t.Fatal("no seed reported a lost write although acknowledged writes were never synced before power losses")
	}
}

// TestFaultsStrike sums the statistics of a faulty sweep: every enabled
// fault class must have struck, or a passing sweep would prove nothing.
func TestFaultsStrike(t *testing.T) {
	faults, _ := ParseFaults(singleBrokerFaults)
	const seeds = 100
	var total Stats
	failedByOp := map[string]int64{}
	unreadable, offsetsDamaged := int64(0), int64(0)
	for seed := uint64(1); seed <= seeds; seed++ {
		result := Run(Derive(seed, faults), Options{})
		for _, end := range result.History.Ends {
			if end.Error != "" {
				unreadable++
			}
		}
		for _, d := range result.History.Damage {
			if d.Topic == offsetsTopicName {
				offsetsDamaged++
			}
		}
		s := result.Stats
		total.Damages += s.Damages
		total.Disk.ReadsCorrupted += s.Disk.ReadsCorrupted
		total.Disk.LatentReadsFailed += s.Disk.LatentReadsFailed
		total.BrokerCrashes += s.BrokerCrashes
		total.PowerLosses += s.PowerLosses
		total.ClientCrashes += s.ClientCrashes
		total.NetworkFaults += s.NetworkFaults
		total.DiskErrorBursts += s.DiskErrorBursts
		total.DiskFullSpells += s.DiskFullSpells
		total.LongDiskFullSpells += s.LongDiskFullSpells
		total.Pauses += s.Pauses
		total.BrokerHalts += s.BrokerHalts
		total.Indefinite += s.Indefinite
		total.Acknowledged += s.Acknowledged
		total.Polled += s.Polled
		total.RetainedFrom += s.RetainedFrom
		total.IO.Tail += s.IO.Tail
		total.IO.Cancelled += s.IO.Cancelled
		total.IO.Stalled += s.IO.Stalled
		total.IO.CancelledStalled += s.IO.CancelledStalled
		total.Disk.CrashPointsHit += s.Disk.CrashPointsHit
		total.Disk.PagesDropped += s.Disk.PagesDropped
		total.Disk.SyncsNoSpace += s.Disk.SyncsNoSpace
		total.Disk.WritesNoSpace += s.Disk.WritesNoSpace
		total.Disk.ReadBitFlips += s.Disk.ReadBitFlips
		total.Disk.CallsFailedTookEffect += s.Disk.CallsFailedTookEffect
		for kind := range s.Disk.TornTails {
			total.Disk.TornTails[kind] += s.Disk.TornTails[kind]
		}
		for _, op := range everyCallOps {
			failedByOp[op.String()] += s.Disk.CallsFailed[op]
		}
		total.Network.PowerOffs += s.Network.PowerOffs
		total.Network.FramesBlackholed += s.Network.FramesBlackholed
		total.Network.FramesLostRandom += s.Network.FramesLostRandom
	}
	// Effects, not injections: each count is something that happened to
	// the broker or its clients.
	counts := map[string]int64{
		"broker crashes": int64(total.BrokerCrashes), "power losses": int64(total.PowerLosses),
		"client crashes": int64(total.ClientCrashes), "network faults": int64(total.NetworkFaults),
		"disk error bursts": int64(total.DiskErrorBursts), "disk full spells": int64(total.DiskFullSpells),
		"long disk full spells": int64(total.LongDiskFullSpells), "pauses": int64(total.Pauses),
		"indefinite produces": int64(total.Indefinite), "acknowledged produces": int64(total.Acknowledged),
		"halts after a failed sync": int64(total.BrokerHalts), "polled records": int64(total.Polled),
		"offsets deleted by retention":       total.RetainedFrom,
		"fsyncs from the latency tail":       total.IO.Tail,
		"fsyncs cut off by a crash":          total.IO.Cancelled,
		"fsyncs held by a disk stall":        total.IO.Stalled,
		"stalled fsyncs cut off by a crash":  total.IO.CancelledStalled,
		"crashes between two disk calls":     total.Disk.CrashPointsHit,
		"pages dropped after a failed fsync": total.Disk.PagesDropped,
		"fsyncs failed with ENOSPC":          total.Disk.SyncsNoSpace,
		"writes refused by a full disk":      total.Disk.WritesNoSpace,
		"bits flipped on read":               total.Disk.ReadBitFlips,
		"failed calls that took effect":      total.Disk.CallsFailedTookEffect,
		"silent power-offs":                  total.Network.PowerOffs,
		"frames held by one-way cuts":        total.Network.FramesBlackholed,
		"frames lost at random":              total.Network.FramesLostRandom,
		"torn writes ending cleanly":         total.Disk.TornTails[sim.TornTailClean],
		"torn writes ending in zeros":        total.Disk.TornTails[sim.TornTailZero],
		"torn writes ending in garbage":      total.Disk.TornTails[sim.TornTailGarbage],
		"batches damaged at rest":            int64(total.Damages),
		"reads of bytes corrupted at rest":   total.Disk.ReadsCorrupted,
		"reads failed by a latent sector":    total.Disk.LatentReadsFailed,
		"partitions drained unreadable":      unreadable,
		"__consumer_offsets batches damaged": offsetsDamaged,
	}
	for op, n := range failedByOp { // order-independent: into a map
		// The workload never deletes a topic, the only user of RemoveAll;
		// broker and storage unit tests fail it instead.
		if op != sim.DiskOpRemoveAll.String() {
			counts["failed "+op+" calls"] = n
		}
	}
	names := make([]string, 0, len(counts))
	for name := range counts { // order-independent: sorted below
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if counts[name] == 0 {
			t.Errorf("no %s in %d runs with every fault", name, seeds)
		}
		t.Logf("%s: %d", name, counts[name])
	}
}
