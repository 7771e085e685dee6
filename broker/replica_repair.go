package broker

import (
	"log/slog"
	"path"
	"slices"

	"github.com/kafkasim/kafkasim/broker/metadata"
	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/planted"
)

// Damaged replicas (cluster mode).
//
// A replica whose stored data is found corrupt goes offline like a
// standalone broker's partition (offline.go): it serves and writes
// nothing and keeps every byte. In a cluster the other replicas still
// hold the data, so it is repaired instead of waiting for an operator:
//
//  1. Every heartbeat names its directory in OfflineLogDirs
//     (metadata.ReplicaDirectoryID), and the controller takes the replica
//     out of service: out of the ISR and the ELR, its leadership moved
//     (metadata.OfflineReplicaRecords). A replica that is the last ISR
//     member keeps its place, offline, and the partition waits (its data
//     may be all that is left of what was committed) for an operator or an
//     unclean election.
//  2. Once the image shows it out of service (not leader, not in the ISR,
//     not in the ELR), and the broker is unfenced (so that the image is
//     not a stale view replayed after a restart), it sets the damaged
//     directory aside (renamed
//     with the orphaned suffix, never deleted), opens an empty log in its
//     place, and follows the leader like a new replica: it fetches from the
//     leader's log start and rejoins the ISR only once caught up, by the
//     usual rules. Until step 2 it is never empty while it could be
//     elected, which is what keeps the repair from losing anything.

// offlineReplicaDirectories lists the directory ids of this broker's
// replicas that are offline, for the heartbeat.
func (c *cluster) offlineReplicaDirectories() [][16]byte {
	var ids [][16]byte
	for _, t := range c.node.catalog.sorted() {
		for _, p := range t.partitions {
			if p.offline != nil && !p.closed {
				ids = append(ids, metadata.ReplicaDirectoryID(metadata.TopicID(t.id), p.index))
			}
		}
	}
	return ids
}

// outOfService reports whether the image has taken this broker's replica
// out of service: it neither leads nor is in the ISR or the ELR.
func (c *cluster) outOfService(state metadata.PartitionState) bool {
	id := c.node.cfg.NodeID
	return state.Leader != id && !slices.Contains(state.ISR, id) && !slices.Contains(state.ELR, id)
}

// applyOffline handles an offline local partition when the image changes:
// it plays no role, and it is repaired once out of service.
func (c *cluster) applyOffline(t *topic, index int32) {
	p := t.partitions[index]
	role, state := c.desiredRole(t, index)
	if p.repl.role != roleNone {
		p.setRole(roleNone, state)
	}
	if role == roleNone && !slices.Contains(state.Replicas, c.node.cfg.NodeID) {
		return // not a replica (any more): nothing to fetch back
	}
	// Only on a caught-up view: a restarted broker replays the metadata
	// log, and an old record (the partition's creation, say, before this
	// replica joined the ISR) shows it out of service while the ISR still
	// counts it (sim seed 50349: emptied on such a view, it was elected
	// and lost everything committed). The controller unfences a broker
	// only once it has applied its own registration, which comes after
	// every record of its previous incarnation.
	if c.outOfService(state) && (!c.lifecycle.fenced || planted.Is("repair-in-service")) {
		c.repair(t, index)
	}
}

// repair sets a damaged replica's directory aside and opens an empty log
// in its place, which then follows its leader (applyImage).
func (c *cluster) repair(t *topic, index int32) {
	n := c.node
	old := t.partitions[index]
	if err := old.close(); err != nil {
		n.log.Warn("closing a damaged replica", slog.String("partition", old.String()), slog.Any("err", err))
	}
	entries, err := n.env.FS.ReadDir(n.cfg.LogDir)
	name := path.Base(old.dir)
	if err == nil && slices.ContainsFunc(entries, func(e core.DirEntry) bool { return e.Name == name }) {
		err = n.catalog.setAside(name, entries)
	}
	// With the directory gone an earlier attempt renamed it and then
	// failed to sync the parent (sim seed 600614): renaming again fails
	// for good and the replica stayed offline, so only the sync is
	// retried. Should that rename not survive a crash, the damaged copy
	// is back under its own name and found again.
	if err == nil {
		err = n.env.FS.SyncDir(n.cfg.LogDir)
	}
	if err != nil {
		n.log.Warn("cannot set a damaged replica aside; it stays offline", slog.String("partition", old.String()), slog.Any("err", err))
		old.closed = false
		return
	}
	fresh, err := openPartition(n, t, index)
	if err != nil {
		n.halt(err)
		return
	}
	t.partitions[index] = fresh
	n.log.Warn("damaged replica set aside; fetching it again from the leader", slog.String("partition", fresh.String()),
		slog.String("set_aside_from", old.dir))
}
