package storage

import (
	"fmt"

	"github.com/kafkasim/kafkasim/core/planted"
	"github.com/kafkasim/kafkasim/core/record"
)

// Recovery tells a torn tail from corruption before it changes anything.
//
// A torn tail is what a crash leaves after appends that were never synced:
// a partial batch, zeros (a file that grew before its data reached the
// device) or garbage, up to the end of the file. Nothing valid follows it,
// and nothing in it was acknowledged as durable, so recovery truncates it in
// place and syncs. Corruption is a stably invalid batch (three reads agree)
// that is either below the checkpointed recovery point (the log synced it,
// so it was valid once) or followed by a valid batch later in the segment or
// in a later segment (a crash tears only the end of what was appended).
// Recovery then changes nothing and fails Open with a *CorruptionError: the
// partition goes offline and keeps every byte for a repair from a replica.
//
// After a recorded failed fsync (see RecordSyncFailure) an invalid batch
// above the checkpointed recovery point is a torn tail even when valid
// batches follow: Linux may drop or zero the pages of a failed fsync while
// later appends reach the device, and none of that range was acknowledged as
// durable.
//
// Known limit: corruption at rest in the last batches above the checkpointed
// recovery point (synced, but not yet checkpointed) looks like a torn tail
// and is truncated. Checkpointing the recovery point soon after each sync
// (CheckpointRecoveryPoint) narrows that window.

// judgeInvalidBatch decides what the stably invalid batch at s.sizeBytes of
// segment i (fileBytes long) is: nil for a torn tail, which the caller cuts,
// or a *CorruptionError. scanFrom is the first segment recovery validates
// whole; syncFailed says whether a failed fsync was recorded.
func (l *Log) judgeInvalidBatch(i, scanFrom int, fileBytes int64, syncFailed bool) error {
	s := l.segments[i]
	switch {
	case planted.Is("recovery-cuts-corruption"):
		return nil
	case i < scanFrom:
		return l.corruption(s, s.sizeBytes, s.nextOffset, fmt.Sprintf("invalid batch in a segment below the recovery point %d", l.recoveryPointCheckpointed))
	case s.nextOffset < l.recoveryPointCheckpointed:
		return l.corruption(s, s.sizeBytes, s.nextOffset, fmt.Sprintf("invalid batch below the recovery point %d", l.recoveryPointCheckpointed))
	case syncFailed:
		return nil
	}
	position, found, err := l.findValidBatch(s, s.sizeBytes+1, fileBytes)
	if err != nil {
		return err
	}
	if found {
		return l.corruption(s, s.sizeBytes, s.nextOffset, fmt.Sprintf("invalid batch followed by a valid one at position %d", position))
	}
	for _, later := range l.segments[i+1:] {
		laterBytes, err := later.file.Size()
		if err != nil {
			return err
		}
		position, found, err := l.findValidBatch(later, 0, laterBytes)
		if err != nil {
			return err
		}
		if found {
			return l.corruption(s, s.sizeBytes, s.nextOffset, fmt.Sprintf("invalid batch followed by a valid one in segment %d at position %d", later.baseOffset, position))
		}
	}
	return nil
}

// corruption returns the *CorruptionError for position of s, where a batch
// holding offset should start.
func (l *Log) corruption(s *segment, position, offset int64, reason string) error {
	return &CorruptionError{File: segmentFileName(l.dir, s.baseOffset, logSuffix), Position: position, Offset: offset, Reason: reason}
}

// magicPosition is where the magic byte sits in a batch header.
const magicPosition = 16

// findValidBatch looks for a valid batch of s (one that checkStoredBatch
// accepts with offsets in the segment) starting at any byte position in
// [from, fileBytes). The bytes are read in chunks until three reads agree,
// so that a bit flipped on read can neither hide a valid batch (which would
// let corruption pass for a torn tail and be cut) nor invent one (the CRC
// rules that out). Only positions whose magic byte is right are examined.
func (l *Log) findValidBatch(s *segment, from, fileBytes int64) (int64, bool, error) {
	if fileBytes-from < record.HeaderBytes {
		return 0, false, nil
	}
	chunkBytes := min(fileBytes-from, rewriteChunkBytes)
	chunk, spare := make([]byte, chunkBytes), make([]byte, chunkBytes)
	for start := from; fileBytes-start >= record.HeaderBytes; {
		n := min(chunkBytes, fileBytes-start)
		if err := stableRead(s.file, chunk[:n], spare, start); err != nil {
			return 0, false, err
		}
		// Candidates are the positions whose magic byte lies in the chunk;
		// the next chunk starts at the first one that was not examined.
		candidates := n - magicPosition
		for k := range candidates {
			if chunk[k+magicPosition] != record.Magic || fileBytes-(start+k) < record.HeaderBytes {
				continue
			}
			if k+record.HeaderBytes <= n && !plausibleHeader(s, chunk[k:k+record.HeaderBytes], fileBytes-(start+k)) {
				continue
			}
			view := segment{baseOffset: s.baseOffset, nextOffset: s.baseOffset, sizeBytes: start + k, file: s.file}
			_, valid, err := l.confirmBatch(&view, fileBytes)
			if err != nil {
				return 0, false, err
			}
			if valid {
				return start + k, true, nil
			}
		}
		start += candidates
	}
	return 0, false, nil
}

// plausibleHeader is a cheap filter for findValidBatch: the header parses,
// its batch fits in the bytes left, and its offsets fit the segment.
func plausibleHeader(s *segment, header []byte, leftBytes int64) bool {
	h, err := record.ParseHeader(header)
	return err == nil && int64(h.TotalBytes()) <= leftBytes && h.BaseOffset >= s.baseOffset && s.fits(h.LastOffset())
}
