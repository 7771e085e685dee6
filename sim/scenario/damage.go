package scenario

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafkasim/kafkasim/checker"
	"github.com/kafkasim/kafkasim/client"
	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/record"
	"github.com/kafkasim/kafkasim/sim"
)

// Damage at rest (FaultCorruption).
//
// Now and then the medium damages a record batch the broker has synced:
// some of its bytes change (corruption at rest) or become unreadable (a
// latent sector error). The injector aims at whole batches, found by
// reading the segment file's stable content with the Kafka batch format
// (never by asking the broker), so that it can tell the checker exactly
// which records it hit (checker.Damage).
//
// It aims only at a batch that a durable valid batch follows in the same
// file, so that no crash can leave it last, where it would look like a
// torn write (which recovery rightly cuts). While the broker runs, it aims
// only below the recovery point checkpointed on disk: the newest synced
// batches above it look like a torn tail to a recovery after a recorded
// failed fsync, which may cut them (the known limit in
// broker/storage/recover_tail.go), and the checker cannot yet judge a cut
// that reuses offsets a consumer already read. Half the time (with crash
// faults on) the broker crashes or loses power first and the damage
// strikes while it is down: recovery then meets it before anything else,
// and it may aim above the recovery point too, unless a failed fsync is
// recorded in the partition. Recovery must then take the partition
// offline, never cut it (a cut deletes the acknowledged records after the
// damage).

// DamageSpec is how a run damages stored data; zero when it does not.
type DamageSpec struct {
	// Every is the mean time between two damages; 0 turns them off.
	Every time.Duration
	// LatentChance is the share of damages that are latent sector errors
	// rather than changed bytes.
	LatentChance float64
	// TailChance is the share aimed at the newest batches of a partition.
	TailChance float64
	// CrashAfterChance is the chance that the broker crashes (or loses
	// power, when the run has it) just before a damage, which then meets
	// recovery first.
	CrashAfterChance float64
}

// offsetsDamageChance is the share of damages aimed at __consumer_offsets
// (offsetsTopicName) instead of the workload's topic: the groups whose
// offsets partition goes offline are unavailable for the rest of the run,
// never reset, which the commit and delivery checks must hold to.
const offsetsDamageChance = 0.2

// offsetsTopicName is Kafka's internal topic of committed offsets.
const offsetsTopicName = "__consumer_offsets"

// damageBytesMax bounds the bytes one damage hits.
const damageBytesMax = 16

// deriveDamage draws a run's damage. Only some runs with the fault get it:
// a single broker takes a damaged partition offline for the rest of the run,
// which the other checks then cannot see into.
func deriveDamage(r *core.Rand, faults Faults) DamageSpec {
	if !faults[FaultCorruption] || !r.Chance(0.4) {
		return DamageSpec{}
	}
	d := DamageSpec{Every: time.Duration(3+r.IntN(13)) * time.Second, LatentChance: 0.3, TailChance: 0.5}
	if faults[FaultCrash] || faults[FaultPowerLoss] {
		d.CrashAfterChance = 0.5
	}
	return d
}

// lines describes the spec for Config.Lines.
func (d DamageSpec) lines() []optionLine {
	on := d.Every > 0
	return []optionLine{
		{"fault.damage.every", d.Every, on},
		{"fault.damage.latent.chance", d.LatentChance, on},
		{"fault.damage.tail.chance", d.TailChance, on},
		{"fault.damage.crash-after.chance", d.CrashAfterChance, on},
	}
}

// storedBatch is one valid record batch of a segment file's stable content.
type storedBatch struct {
	position, size int64
	first, last    int64
}

// storedBatches parses content as a segment file, a sequence of record
// batches, up to the first bytes that are not a whole valid batch.
func storedBatches(content []byte) []storedBatch {
	var batches []storedBatch
	for position := int64(0); position < int64(len(content)); {
		rest := content[position:]
		size, err := record.BatchSize(rest)
		if err != nil || size > len(rest) {
			break
		}
		h, err := record.Validate(rest[:size])
		if err != nil {
			break
		}
		batches = append(batches, storedBatch{position: position, size: int64(size), first: h.BaseOffset, last: h.LastOffset()})
		position += int64(size)
	}
	return batches
}

// damageStoredData damages one batch of a random partition of the
// workload's topic, if any has one it may aim at, and records it. With
// CrashAfterChance the broker crashes first (or loses power, when the run
// has it) and the damage strikes while it is down, so that recovery meets
// it: then it may also aim above the recovery point, where recovery must
// tell it from a torn write.
func (r *run) damageStoredData() {
	spec := r.cfg.Damage
	// In a cluster the damage strikes one node's disk: the partition's
	// only replica when that node leads it, else nothing.
	node := r.pickBroker()
	if !node.down && r.rand.Chance(spec.CrashAfterChance) {
		powerLoss := r.cfg.Faults[FaultPowerLoss] && (!r.cfg.Faults[FaultCrash] || r.rand.Chance(0.5))
		r.noteFault("%s of %s", crashName(powerLoss), node.name)
		r.crashBroker(node, powerLoss)
		r.damageBatch(node, true)
		return
	}
	r.damageBatch(node, false)
}

// damageBatch damages one batch. It aims only at a batch that a valid
// durable batch follows in the same file, so that no crash can leave it
// last, where it would look like a torn write. Unless recoveryNext, it
// aims only below the recovery point checkpointed on disk, which recovery
// does not read again; with recoveryNext (the broker is down, recovery
// runs before anything else) it may aim above it too, provided no failed
// fsync was recorded in the partition (after one, recovery rightly cuts
// at the first invalid batch above the recovery point: the range's
// content is unknown).
func (r *run) damageBatch(node *brokerNode, recoveryNext bool) {
	spec := r.cfg.Damage
	topic, partitions := topicName, r.cfg.Partitions
	if r.rand.Chance(offsetsDamageChance) {
		topic, partitions = offsetsTopicName, r.brokerCfg.OffsetsTopicPartitions
	}
	partition := int32(r.rand.IntN(int(partitions)))
	dir := fmt.Sprintf("%s/%s-%d/", r.brokerCfg.LogDir, topic, partition)
	var segments []sim.StableFile
	for _, f := range node.disk.StableFiles(dir) {
		if strings.HasSuffix(f.Name, ".log") && !strings.Contains(f.Name[len(dir):], "/") {
			segments = append(segments, f)
		}
	}
	if len(segments) == 0 {
		return
	}
	tail := r.rand.Chance(spec.TailChance)
	segment := segments[len(segments)-1] // names sort by base offset
	if !tail {
		segment = segments[r.rand.IntN(len(segments))]
	}
	content, err := node.disk.StableContent(segment.Name)
	if err != nil {
		r.fail(fmt.Errorf("damage: %w", err))
		return
	}
	limit := checkpointedRecoveryPoint(node.disk, dir)
	if recoveryNext && !syncFailureRecorded(node.disk, dir) {
		limit = math.MaxInt64
	}
	var eligible []storedBatch
	batches := storedBatches(content)
	for i := 0; i+1 < len(batches); i++ {
		if batches[i].last < limit {
			eligible = append(eligible, batches[i])
		}
	}
	if len(eligible) == 0 {
		return
	}
	pick := r.rand.IntN(len(eligible))
	if tail {
		pick = len(eligible) - 1 - r.rand.IntN(min(3, len(eligible)))
	}
	b := eligible[pick]
	length := r.rand.Int64Range(1, min(damageBytesMax, b.size))
	at := b.position + r.rand.Int64Range(0, b.size-length)
	kind := checker.DamageCorruption
	if r.rand.Chance(spec.LatentChance) {
		kind = checker.DamageLatent
		err = node.disk.AddLatentError(segment.Name, at, length)
	} else {
		err = node.disk.Corrupt(segment.Name, at, length)
	}
	if err != nil {
		r.fail(fmt.Errorf("damage: %w", err))
		return
	}
	r.stats.Damages++
	r.noteFault("%s of %s-%d offsets %d to %d on %s", damageNames[kind], topic, partition, b.first, b.last, node.name)
	r.recorder.damage = append(r.recorder.damage, checker.Damage{
		Topic: topic, Partition: partition, FirstOffset: b.first, LastOffset: b.last, Kind: kind, At: int64(r.sched.Now()),
	})
}

// damageNames name the kinds of damage in a fault event's description.
var damageNames = map[string]string{
	checker.DamageCorruption: "corruption", checker.DamageLatent: "latent sector error",
}

// syncFailureRecorded reports whether the broker recorded a failed fsync
// in the partition directory dir (its segment-sync-failed marker).
func syncFailureRecorded(disk *sim.Disk, dir string) bool {
	_, err := disk.StableContent(dir + "segment-sync-failed")
	return err == nil
}

// checkpointedRecoveryPoint reads the recovery point the broker
// checkpointed durably in the partition directory dir (the checkpoint
// format: a version line, then the offset), or 0 when there is none. It
// only aims the damage; the checker never sees it.
func checkpointedRecoveryPoint(disk *sim.Disk, dir string) int64 {
	content, err := disk.StableContent(dir + "recovery-point-offset-checkpoint")
	if err != nil {
		return 0
	}
	lines := strings.Fields(string(content))
	if len(lines) != 2 || lines[0] != "0" {
		return 0
	}
	offset, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || offset < 0 {
		return 0
	}
	return offset
}

// errorName is the name a history records for a fetch error: the Kafka
// error's, or checker.ErrorCorruptMessage for data that failed the
// client's validation, or "" for anything else (a lost connection).
func errorName(err error) string {
	if errors.Is(err, client.ErrCorruptFetch) {
		return checker.ErrorCorruptMessage
	}
	var kafka *kerr.Error
	if errors.As(err, &kafka) {
		return kafka.Message
	}
	return ""
}
