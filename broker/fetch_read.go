package broker

import (
	"errors"

	"github.com/kafkasim/kafkasim/broker/storage"
	"github.com/kafkasim/kafkasim/core/planted"
)

// readForFetch appends to buf whole batches from offset, up to maxBytes
// (but at least one batch when minOneBatch), not beyond end (the high
// watermark for a consumer, the log end for a follower),
// continuing across segment boundaries, into a response frame that the
// connection reuses. After the first batch it reads only batches that fit
// the budget (storage.Log.ReadWithin), so a batch that cannot be sent is
// never read, and the buffer it returns keeps every byte of capacity it
// grew, so the next fetch on the connection needs no allocation.
//
// The base offset and leader epoch of a batch are not covered by its CRC,
// so a consumer cannot detect a bit flipped in them. This log is dense (no
// compaction), so readForFetch checks what it hands out (checkBatches): the
// first batch holds offset, every next batch starts where the previous one
// ended, and no epoch is newer than the partition's; storage checks every
// batch's CRC. A violation is a corrupt read (storage.ErrCorruptLog), which
// the client retries, or corruption at rest (storage.ErrCorruption), which
// takes the partition offline.
func (p *partition) readForFetch(offset int64, maxBytes int, minOneBatch bool, end int64, buf []byte) ([]byte, error) {
	if p.offline != nil {
		return buf, p.offlineError()
	}
	if planted.Is("fetch-above-high-watermark") {
		end = p.log.LogEndOffset()
	}
	start := len(buf)
	next := offset
	for next < end {
		budget := maxBytes - (len(buf) - start)
		first := minOneBatch && len(buf) == start
		if budget <= 0 && !first {
			break
		}
		before := len(buf)
		var data []byte
		var err error
		if first {
			data, err = p.log.Read(next, max(budget, 0), end, buf)
		} else {
			data, err = p.log.ReadWithin(next, budget, end, buf)
		}
		if err == nil && len(data) == before {
			break
		}
		if err == nil {
			next, err = p.checkBatches(data[before:], offset, next)
		}
		if err != nil {
			if len(buf) > start && !errors.Is(err, storage.ErrCorruption) {
				// The batches before this chunk were read and checked: they
				// go out, and the next fetch reads the rest again. A bit
				// flipped anywhere in a large read would otherwise fail all
				// of it, and on a disk that flips often a follower never
				// got a whole fetch through (sim seed 70453).
				return buf, nil
			}
			return buf[:start], err
		}
		buf = data
	}
	return buf, nil
}
