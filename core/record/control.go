package record

import (
	"encoding/binary"
	"fmt"
)

// ControlType is the type of a control record, stored in its key.
type ControlType int16

// The control record types. Abort and commit are the transaction markers;
// the others appear in KRaft metadata logs and are recognised, not built.
const (
	ControlAbort          ControlType = 0
	ControlCommit         ControlType = 1
	ControlLeaderChange   ControlType = 2
	ControlSnapshotHeader ControlType = 3
	ControlSnapshotFooter ControlType = 4
)

const (
	// controlKeyBytes is a control key: version int16 and type int16.
	controlKeyBytes = 4
	// markerValueBytes is a transaction marker's value: version int16 and
	// coordinatorEpoch int32.
	markerValueBytes = 6
	// controlKeyVersion and markerValueVersion are the versions we write.
	controlKeyVersion  = 0
	markerValueVersion = 0
)

// ControlRecord is a decoded control record.
type ControlRecord struct {
	// Version is the key's version; we write 0 and read any non-negative one.
	Version int16
	Type    ControlType
	// CoordinatorEpoch is the transaction coordinator's epoch, present in
	// abort and commit markers; zero for other types.
	CoordinatorEpoch int32
}

// AppendControlBatch appends a control batch holding one transaction marker
// (commit or abort) to dst, as a transaction coordinator's WriteTxnMarkers
// makes the partition leader write. spec must name the producer (its
// Transactional flag is implied, its codec must be none); timestamp is the
// marker's timestamp in milliseconds.
func AppendControlBatch(dst []byte, spec BatchSpec, commit bool, coordinatorEpoch int32, timestamp int64) ([]byte, error) {
	if spec.Codec != CodecNone {
		return dst, fmt.Errorf("record: control batches are not compressed, got codec %v", spec.Codec)
	}
	spec.Transactional = true
	markerType := ControlAbort
	if commit {
		markerType = ControlCommit
	}
	var key [controlKeyBytes]byte
	binary.BigEndian.PutUint16(key[0:], controlKeyVersion)
	binary.BigEndian.PutUint16(key[2:], uint16(markerType))
	var value [markerValueBytes]byte
	binary.BigEndian.PutUint16(value[0:], markerValueVersion)
	binary.BigEndian.PutUint32(value[2:], uint32(coordinatorEpoch))
	records := [1]Record{{Timestamp: timestamp, Key: key[:], Value: value[:]}}
	return appendBatch(dst, &spec, records[:], AttrControl, nil)
}

// ParseControlRecord decodes a record of a control batch. Bad input gives an
// error wrapping ErrCorrupt.
func ParseControlRecord(r *Record) (ControlRecord, error) {
	var c ControlRecord
	if len(r.Key) < controlKeyBytes {
		return c, fmt.Errorf("%w: control record key is %d bytes, need %d", ErrCorrupt, len(r.Key), controlKeyBytes)
	}
	c.Version = int16(binary.BigEndian.Uint16(r.Key[0:]))
	c.Type = ControlType(binary.BigEndian.Uint16(r.Key[2:]))
	if c.Version < 0 {
		return c, fmt.Errorf("%w: control record key version %d is negative", ErrCorrupt, c.Version)
	}
	if c.Type != ControlAbort && c.Type != ControlCommit {
		return c, nil
	}
	if len(r.Value) < markerValueBytes {
		return c, fmt.Errorf("%w: transaction marker value is %d bytes, need %d", ErrCorrupt, len(r.Value), markerValueBytes)
	}
	if version := int16(binary.BigEndian.Uint16(r.Value[0:])); version < 0 {
		return c, fmt.Errorf("%w: transaction marker value version %d is negative", ErrCorrupt, version)
	}
	c.CoordinatorEpoch = int32(binary.BigEndian.Uint32(r.Value[2:]))
	return c, nil
}
