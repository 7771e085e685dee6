package broker

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker/storage"
)

// replicaFetch is who sent a Fetch as a follower: its broker id and the
// broker epoch it carried (version 15), and whether this is the request's
// first reading (the one its progress is taken from).
type replicaFetch struct {
	id          int32
	brokerEpoch int64
	fresh       bool
}

// fetchReplicaPartition appends one partition of a follower's Fetch: after
// the epoch checks, a DivergingEpoch when the follower's last fetched
// epoch ends in this log before the offset it fetches from (its log holds
// records this one does not: it must truncate, KAFKA-10554), an
// OFFSET_OUT_OF_RANGE with this log's start when the offset is outside the
// log, or else the follower's progress is recorded (which may move the
// ISR and the high watermark) and batches are read up to the log end.
func fetchReplicaPartition(f *fetchFrame, p *partition, rp kmsg.FetchRequestTopicPartition, replica replicaFetch, maxBytes int, first bool,
) (size int, messages int64, code int16) {
	partitionAt := len(f.buf)
	fail := func(err error) (int, int64, int16) {
		f.buf = f.buf[:partitionAt]
		code := errorCode(err)
		f.beginPartitionError(rp.Partition, code)
		return 0, 0, code
	}
	if err := checkLeaderEpoch(p, rp.CurrentLeaderEpoch); err != nil {
		return fail(err)
	}
	if p.offline != nil {
		return fail(p.offlineError())
	}
	if p.repl.role != roleLeader {
		return fail(fmt.Errorf("%w: %s", kerr.NotLeaderForPartition, p))
	}
	if rp.LastFetchedEpoch > p.leaderEpoch {
		// The follower holds data of an epoch this leader has not heard
		// of: this leader is stale.
		return fail(fmt.Errorf("%w: last fetched epoch %d, leader epoch %d", kerr.UnknownLeaderEpoch, rp.LastFetchedEpoch, p.leaderEpoch))
	}
	start, end := p.log.LogStartOffset(), p.log.LogEndOffset()
	header := fetchPartitionHeader{partition: rp.Partition, highWatermark: p.highWatermark(), lastStable: p.highWatermark(), logStartOffset: start}
	if rp.LastFetchedEpoch >= 0 {
		epoch, epochEnd := p.log.EndOffsetForEpoch(rp.LastFetchedEpoch)
		if epoch == storage.UndefinedEpoch {
			epochEnd = end // no epochs: an empty log, which ends here
		}
		if epoch != rp.LastFetchedEpoch || epochEnd < rp.FetchOffset {
			prefixAt := f.beginPartition(header, 0)
			f.endPartition(prefixAt, len(f.buf)-prefixAt, divergingEpoch{set: true, epoch: epoch, endOffset: epochEnd})
			return 0, 0, 0
		}
	}
	if rp.FetchOffset < start || rp.FetchOffset > end {
		header.errorCode = kerr.OffsetOutOfRange.Code
		f.beginPartitionFields(header)
		f.appendEmptyRecords()
		return 0, 0, header.errorCode
	}
	if replica.fresh {
		if err := p.followerFetched(replica.id, replica.brokerEpoch, rp.FetchOffset); err != nil {
			return fail(err)
		}
		header.highWatermark, header.lastStable = p.highWatermark(), p.highWatermark()
		// The high watermark's advance may have appended at once (the
		// group coordinator stores the next commit as soon as the one
		// before it is answered): the read goes to the log end as it is
		// now. Reading to the end from before left that batch out, and a
		// fetch parked on the log as it is now never saw it grow, so the
		// follower waited out replica.fetch.wait.max.ms for every commit
		// (sim seed 4: a group committing after each poll crawled).
		end = p.log.LogEndOffset()
	}
	maxBytes = max(maxBytes, 0)
	prefixAt := f.beginPartition(header, maxBytes)
	reserved := len(f.buf) - prefixAt
	dataAt := len(f.buf)
	var err error
	for attempt := 1; ; attempt++ {
		f.buf, err = p.readForFetch(rp.FetchOffset, maxBytes, first, end, f.buf)
		// A read that comes back inconsistent (a bit flipped on the way)
		// is read again at once: such flips do not repeat, and a follower
		// told to back off instead would fall behind on a disk that flips
		// often (sim seed 30346). Damage at rest repeats, and fails.
		if err == nil || !errors.Is(err, storage.ErrCorruptLog) || errors.Is(err, storage.ErrCorruption) || attempt == scanReadAttemptsMax {
			break
		}
	}
	if err != nil {
		return fail(p.storageFailure("replica fetch", err))
	}
	size = len(f.buf) - dataAt
	messages = recordsIn(f.buf[dataAt:])
	f.endPartition(prefixAt, reserved, divergingEpoch{})
	return size, messages, 0
}
