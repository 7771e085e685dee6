package broker

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/kafkasim/kafkasim/broker/quorum"
	"github.com/kafkasim/kafkasim/broker/raft"
)

// QuorumObserver sees a cluster node's part in the metadata quorum as a
// history recorder needs it: the recording contract of docs/checker.md
// ("The controller quorum"), which checker.QuorumRecorder takes. Every
// method runs on the node's event loop, in the order things happened; the
// recorder adds the time.
type QuorumObserver interface {
	// QuorumState is the node's quorum state once its epoch, vote and
	// leader are durable; at a start, the state restored from disk.
	QuorumState(epoch int32, role raft.Role, leader, vote int32)
	// QuorumLogEnd is the durable log end: one past the last entry the disk
	// holds after a sync, or what recovery kept at a start.
	QuorumLogEnd(offset int64)
	// QuorumHighWatermark is the node's new high watermark, told before the
	// entries it commits are applied.
	QuorumHighWatermark(offset int64)
	// QuorumApplied is a committed entry the metadata image applied, in
	// offset order. Digest is the hexadecimal SHA-256 of the image's
	// Snapshot after it, given for the last entry of each committed batch
	// and empty for the others.
	QuorumApplied(offset int64, epoch int32, data []byte, digest string)
	// QuorumSnapshot is a snapshot that became the node's log start:
	// source is "taken", "installed" or "loaded" (checker.SnapshotSource's
	// names); offset is the first entry it does not hold, epoch that of the
	// entry before, digest the image's as in QuorumApplied. QuorumLogStart
	// follows with the log's new first offset. The host does not tell a
	// loaded snapshot's epoch: it is the restored image's applied epoch, and
	// a recorder that saw the node take or install that snapshot knows it
	// better.
	QuorumSnapshot(offset int64, epoch int32, digest, source string)
	// QuorumLogStart is the log's new first offset: everything below it
	// lives only in a snapshot.
	QuorumLogStart(offset int64)
}

// snapshotDigestsMax is how many of the latest committed batches' digests
// an observation keeps: a snapshot the host takes is of the state after
// one of them, and is reported once it is durable, a few batches later at
// most.
const snapshotDigestsMax = 64

// quorumObservation is what an observer was last told, so that it is told
// only changes.
type quorumObservation struct {
	observer QuorumObserver
	// durable is the quorum state last made durable; told says whether a
	// state was told at all, and toldHard and toldRole what it was.
	durable       raft.HardState
	told          bool
	toldHard      raft.HardState
	toldRole      raft.Role
	logEnd        int64
	highWatermark int64
	// digests are the image digests after the latest committed batches, by
	// the offset after each batch, oldest first.
	digests []batchDigest
}

// batchDigest is the image digest after the entries below offset.
type batchDigest struct {
	offset int64
	digest string
}

// ObserveQuorum makes o see this node's quorum history from now on. Call it
// after New and before Start, so that o sees the state the node restored
// before anything else. It does nothing on a standalone broker, which has
// no quorum.
func (n *Node) ObserveQuorum(o QuorumObserver) {
	c := n.cluster
	if c == nil || o == nil {
		return
	}
	h := c.host
	obs := &quorumObservation{observer: o, highWatermark: -1, logEnd: h.EndOffset(),
		durable: h.HardState()}
	o.QuorumLogEnd(obs.logEnd)
	if start := h.LogStartOffset(); start > 0 {
		// New restored the image from the snapshot at the log start.
		o.QuorumSnapshot(start, c.image.AppliedEpoch(), imageDigest(c), "loaded")
		o.QuorumLogStart(start)
	}
	obs.tellState(h.Role(), obs.durable)
	obs.tellHighWatermark(h.HighWatermark())

	h.OnPersisted = func(hard raft.HardState, durableLogEnd int64) {
		obs.durable = hard
		obs.tellPassedState(c.host.Epoch(), c.host.Leader(), n.cfg.NodeID)
		if durableLogEnd != obs.logEnd {
			obs.logEnd = durableLogEnd
			o.QuorumLogEnd(durableLogEnd)
		}
	}
	c.observeCommitted = func(committed []raft.Entry) {
		obs.tellCurrentState(c)
		obs.tellHighWatermark(c.host.HighWatermark())
		digest := imageDigest(c)
		obs.digests = append(obs.digests, batchDigest{offset: committed[len(committed)-1].Offset + 1, digest: digest})
		if len(obs.digests) > snapshotDigestsMax {
			obs.digests = obs.digests[1:]
		}
		for i, e := range committed {
			d := ""
			if i == len(committed)-1 {
				d = digest
			}
			o.QuorumApplied(e.Offset, e.Epoch, e.Data, d)
		}
	}
	h.OnSnapshot = func(offset int64, epoch int32, source quorum.SnapshotSource) {
		digest := ""
		if source == quorum.SnapshotInstalled {
			// The image was restored from it before this call.
			digest = imageDigest(c)
		} else {
			for _, d := range obs.digests {
				if d.offset == offset {
					digest = d.digest
				}
			}
		}
		o.QuorumSnapshot(offset, epoch, digest, source.String())
		o.QuorumLogStart(offset)
	}
	// After every completed Ready, committed entries or not: a new role or
	// high watermark shows there first.
	update := h.OnUpdate
	h.OnUpdate = func(committed []raft.Entry) {
		update(committed)
		if n.stopped {
			return
		}
		obs.tellCurrentState(c)
		obs.tellHighWatermark(c.host.HighWatermark())
	}
}

// imageDigest is the digest a recorder records with an applied entry.
func imageDigest(c *cluster) string {
	sum := sha256.Sum256(c.image.Snapshot())
	return hex.EncodeToString(sum[:])
}

// tellCurrentState tells the node's current state when its epoch and
// leader are the durable ones (the contract's rule 2). The host does not
// expose the vote in memory; within one epoch and leader a vote changes
// only from none to a candidate, which is a new durable state that
// OnPersisted tells, so the durable vote is the one told.
func (obs *quorumObservation) tellCurrentState(c *cluster) {
	h := c.host
	if h.Epoch() != obs.durable.Epoch || h.Leader() != obs.durable.LeaderID {
		return
	}
	obs.tellState(h.Role(), obs.durable)
}

// tellPassedState tells a state that just became durable. If the node's
// memory has already moved past it, its role is gone; the one told follows
// from the state: resigned if it names this node leader, follower if it
// names another, unattached if none. The node may have sent messages in
// it, so it must be told even so.
func (obs *quorumObservation) tellPassedState(epoch, leader, self int32) {
	hard := obs.durable
	if epoch == hard.Epoch && leader == hard.LeaderID {
		return // the current state: tellCurrentState tells it with its role
	}
	role := raft.RoleUnattached
	switch hard.LeaderID {
	case raft.NoNode:
	case self:
		role = raft.RoleResigned
	default:
		role = raft.RoleFollower
	}
	obs.tellState(role, hard)
}

// tellState tells (role, hard) unless it is what was told last.
func (obs *quorumObservation) tellState(role raft.Role, hard raft.HardState) {
	if obs.told && obs.toldHard == hard && obs.toldRole == role {
		return
	}
	obs.told, obs.toldHard, obs.toldRole = true, hard, role
	obs.observer.QuorumState(hard.Epoch, role, hard.LeaderID, hard.VotedFor)
}

// tellHighWatermark tells a changed high watermark.
func (obs *quorumObservation) tellHighWatermark(offset int64) {
	if offset == obs.highWatermark {
		return
	}
	obs.highWatermark = offset
	obs.observer.QuorumHighWatermark(offset)
}
