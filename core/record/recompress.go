package record

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrControlBatch is returned by Recompress for a control batch: control
// records (transaction markers) are written by the broker itself,
// uncompressed, and are never rewritten.
var ErrControlBatch = errors.New("record: control batches are not recompressed")

// Recompress returns batch with its records section compressed with codec,
// as a broker does for a topic whose compression.type names a codec (Kafka's
// LogValidator rebuilds such batches). The records are carried over byte for
// byte (offset and timestamp deltas, keys, values, headers), and every header
// field is kept (base offset, partition leader epoch, last offset delta,
// base and max timestamps, producer id, epoch and base sequence, record count,
// and the attributes other than the codec: timestamp type, transactional);
// only the length, the codec bits and the CRC are recomputed. Offsets and
// idempotence are therefore unaffected.
//
// batch must be exactly one batch; it is fully validated first (CRC, every
// record), and a failure wraps ErrCorrupt or ErrTruncated, as Reader.Records
// reports it. A batch already compressed with codec is returned as is (the
// same slice); otherwise the result is newly allocated and batch is not
// modified. A result larger than BatchBytesMax is an error.
func Recompress(batch []byte, codec Codec) ([]byte, error) {
	if codec < CodecNone || codec > CodecZstd {
		return nil, fmt.Errorf("record: unknown compression codec %d", int8(codec))
	}
	var reader Reader
	h, err := reader.Records(batch, nil)
	if err != nil {
		return nil, err
	}
	if h.Attributes.IsControl() {
		return nil, ErrControlBatch
	}
	source := h.Attributes.Compression()
	if source == codec {
		return batch, nil
	}
	section := batch[HeaderBytes:]
	if source != CodecNone {
		section = reader.records // Records left the decompressed section here.
	}
	out := make([]byte, HeaderBytes, HeaderBytes+len(section))
	copy(out, batch[:HeaderBytes])
	if codec == CodecNone {
		out = append(out, section...)
	} else {
		var c compressors
		if out, err = c.compress(out, section, codec); err != nil {
			return nil, fmt.Errorf("record: compress with %v: %w", codec, err)
		}
	}
	if len(out) > BatchBytesMax {
		return nil, fmt.Errorf("record: the batch recompressed with %v is %d bytes, over the %d byte limit", codec, len(out), BatchBytesMax)
	}
	be := binary.BigEndian
	be.PutUint32(out[offsetBatchLength:], uint32(len(out)-LengthPrefixBytes))
	attributes := h.Attributes&^AttrCompressionMask | Attributes(codec)
	be.PutUint16(out[offsetAttributes:], uint16(attributes))
	be.PutUint32(out[offsetCRC:], ComputeCRC(out))
	return out, nil
}
