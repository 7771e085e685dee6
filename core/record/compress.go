package record

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// DecompressedBytesMax bounds the records section of a batch after
// decompression. A batch that would inflate beyond it is rejected as corrupt
// before the memory is committed, so a small hostile batch (a "zip bomb")
// cannot exhaust memory.
const DecompressedBytesMax = 64 << 20

// xerialMagic opens snappy data in the xerial framing that Kafka's Java
// clients write: the magic, a big-endian int32 version and an int32 minimum
// compatible version, then chunks of [int32 length][raw snappy block].
var xerialMagic = []byte("\x82SNAPPY\x00")

const (
	// xerialHeaderBytes is the magic plus the two version fields.
	xerialHeaderBytes = 16
	// xerialChunkPrefixBytes is the length in front of each chunk.
	xerialChunkPrefixBytes = 4
	// readBufferBytesMin is the first allocation when decompressing a
	// streaming codec whose output size is unknown up front.
	readBufferBytesMin = 4 << 10
	// emptyReadsMax bounds consecutive reads that return no bytes and no
	// error, so that a misbehaving decoder cannot spin forever.
	emptyReadsMax = 100
	// lz4BlockSize is the block size of lz4 frames we write: 64 KiB, what
	// Kafka's Java producer uses, keeping the decoder's buffer small.
	lz4BlockSize = lz4.Block64Kb
)

// The zstd encoder and decoder are costly to build, and their EncodeAll and
// DecodeAll are safe for concurrent use, so one of each is shared by the
// whole package. Both are created with concurrency 1, which starts no
// background goroutines.
var (
	zstdEncoderOnce sync.Once
	zstdEncoder     *zstd.Encoder
	zstdDecoderOnce sync.Once
	zstdDecoder     *zstd.Decoder
)

func sharedZstdEncoder() *zstd.Encoder {
	zstdEncoderOnce.Do(func() {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithZeroFrames(true))
		if err != nil {
			panic(fmt.Sprintf("record: creating the zstd encoder: %v", err))
		}
		zstdEncoder = enc
	})
	return zstdEncoder
}

func sharedZstdDecoder() *zstd.Decoder {
	zstdDecoderOnce.Do(func() {
		dec, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(DecompressedBytesMax),
			zstd.WithDecoderMaxWindow(DecompressedBytesMax),
		)
		if err != nil {
			panic(fmt.Sprintf("record: creating the zstd decoder: %v", err))
		}
		zstdDecoder = dec
	})
	return zstdDecoder
}

// appendWriter is an io.Writer that appends to a byte slice, so that the
// streaming codecs write straight into the caller's batch buffer.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// compressors holds the reusable streaming encoders of one Builder.
type compressors struct {
	sink appendWriter
	gzip *gzip.Writer
	lz4  *lz4.Writer
}

// compress appends src compressed with codec to dst. Snappy is written as
// one raw block (what franz-go and librdkafka send and every client reads),
// lz4 as a standard LZ4 frame, gzip as one member, zstd as one frame.
func (c *compressors) compress(dst, src []byte, codec Codec) ([]byte, error) {
	switch codec {
	case CodecGzip:
		return c.compressStream(dst, src, c.gzipWriter())
	case CodecLZ4:
		return c.compressStream(dst, src, c.lz4Writer())
	case CodecSnappy:
		return appendSnappyBlock(dst, src), nil
	case CodecZstd:
		return sharedZstdEncoder().EncodeAll(src, dst), nil
	}
	panic(fmt.Sprintf("record: compress called with codec %v", codec))
}

// streamWriter is what the gzip and lz4 writers have in common.
type streamWriter interface {
	io.WriteCloser
	Reset(io.Writer)
}

func (c *compressors) gzipWriter() streamWriter {
	if c.gzip == nil {
		w, err := gzip.NewWriterLevel(nil, gzip.DefaultCompression)
		if err != nil {
			panic(fmt.Sprintf("record: creating the gzip writer: %v", err))
		}
		c.gzip = w
	}
	return c.gzip
}

func (c *compressors) lz4Writer() streamWriter {
	if c.lz4 == nil {
		w := lz4.NewWriter(nil)
		if err := w.Apply(lz4.BlockSizeOption(lz4BlockSize)); err != nil {
			panic(fmt.Sprintf("record: configuring the lz4 writer: %v", err))
		}
		c.lz4 = w
	}
	return c.lz4
}

func (c *compressors) compressStream(dst, src []byte, w streamWriter) ([]byte, error) {
	c.sink.b = dst
	w.Reset(&c.sink)
	_, err := w.Write(src)
	if err == nil {
		err = w.Close()
	}
	dst = c.sink.b
	c.sink.b = nil
	w.Reset(nil) // Drop the writer's reference to the caller's buffer.
	if err != nil {
		return dst, fmt.Errorf("record: compressing: %w", err)
	}
	return dst, nil
}

// appendSnappyBlock appends src as one raw snappy block, encoding in place
// in dst's spare capacity.
func appendSnappyBlock(dst, src []byte) []byte {
	start := len(dst)
	dst = slices.Grow(dst, snappy.MaxEncodedLen(len(src)))
	block := s2.EncodeSnappy(dst[start:cap(dst)], src)
	if len(block) > 0 && &block[0] != &dst[start:cap(dst)][0] {
		panic("record: snappy encoded outside the reserved capacity")
	}
	return dst[:start+len(block)]
}

// decompressors holds the reusable streaming decoders of one Reader.
type decompressors struct {
	src  bytes.Reader
	gzip gzip.Reader
	lz4  *lz4.Reader
}

// decompress appends the decompressed form of src to dst, which must be
// empty. Every failure wraps ErrCorrupt, including output beyond
// DecompressedBytesMax.
func (d *decompressors) decompress(dst, src []byte, codec Codec) ([]byte, error) {
	if len(dst) != 0 {
		panic("record: decompress into a non-empty buffer")
	}
	var out []byte
	var err error
	switch codec {
	case CodecGzip:
		d.src.Reset(src)
		if err = d.gzip.Reset(&d.src); err == nil {
			out, err = readBounded(dst, &d.gzip)
		}
	case CodecLZ4:
		d.src.Reset(src)
		if d.lz4 == nil {
			d.lz4 = lz4.NewReader(nil)
		}
		d.lz4.Reset(&d.src)
		out, err = readBounded(dst, d.lz4)
		d.lz4.Reset(nil)
	case CodecSnappy:
		out, err = decodeSnappy(dst, src)
	case CodecZstd:
		out, err = sharedZstdDecoder().DecodeAll(src, dst)
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			err = errDecompressedTooLarge
		}
	default:
		panic(fmt.Sprintf("record: decompress called with codec %v", codec))
	}
	if err == nil && len(out) > DecompressedBytesMax {
		err = errDecompressedTooLarge
	}
	if err != nil {
		return dst, fmt.Errorf("%w: %v records: %v", ErrCorrupt, codec, err)
	}
	return out, nil
}

var errDecompressedTooLarge = fmt.Errorf("decompressed size exceeds the %d byte limit", DecompressedBytesMax)

// readBounded appends everything r yields to dst, failing once the output
// would pass DecompressedBytesMax. Its buffer grows geometrically.
func readBounded(dst []byte, r io.Reader) ([]byte, error) {
	emptyReads := 0
	for {
		if len(dst) == cap(dst) {
			grow := min(max(cap(dst), readBufferBytesMin), DecompressedBytesMax+1-len(dst))
			dst = slices.Grow(dst, grow)
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst) > DecompressedBytesMax {
			return dst, errDecompressedTooLarge
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
		if n == 0 {
			emptyReads++
			if emptyReads > emptyReadsMax {
				return dst, io.ErrNoProgress
			}
		} else {
			emptyReads = 0
		}
	}
}

// decodeSnappy decodes a raw snappy block or xerial-framed snappy chunks.
func decodeSnappy(dst, src []byte) ([]byte, error) {
	if len(src) >= xerialHeaderBytes && bytes.HasPrefix(src, xerialMagic) {
		return decodeXerial(dst, src[xerialHeaderBytes:])
	}
	return appendSnappyDecoded(dst, src)
}

// decodeXerial decodes the chunks that follow a xerial header. It sums the
// declared sizes first, so that the limit holds before anything is
// allocated and the buffer grows once.
func decodeXerial(dst, chunks []byte) ([]byte, error) {
	total := 0
	for rest := chunks; len(rest) > 0; {
		chunk, next, err := nextXerialChunk(rest)
		if err != nil {
			return dst, err
		}
		n, err := snappy.DecodedLen(chunk)
		if err != nil {
			return dst, err
		}
		total += n
		if total > DecompressedBytesMax {
			return dst, errDecompressedTooLarge
		}
		rest = next
	}
	dst = slices.Grow(dst, total)
	for rest := chunks; len(rest) > 0; {
		chunk, next, err := nextXerialChunk(rest)
		if err != nil {
			panic(fmt.Sprintf("record: xerial chunk vanished on the second pass: %v", err))
		}
		if dst, err = appendSnappyDecoded(dst, chunk); err != nil {
			return dst, err
		}
		rest = next
	}
	return dst, nil
}

// nextXerialChunk splits the first [int32 length][block] chunk off b.
func nextXerialChunk(b []byte) (chunk, rest []byte, err error) {
	if len(b) < xerialChunkPrefixBytes {
		return nil, nil, fmt.Errorf("xerial chunk length cut short: %d bytes left", len(b))
	}
	size := int32(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]))
	b = b[xerialChunkPrefixBytes:]
	if size < 0 || int(size) > len(b) {
		return nil, nil, fmt.Errorf("xerial chunk length %d, but %d bytes left", size, len(b))
	}
	return b[:size], b[size:], nil
}

// appendSnappyDecoded decodes one raw snappy block onto the end of dst,
// checking its declared size against the limit before allocating.
func appendSnappyDecoded(dst, block []byte) ([]byte, error) {
	n, err := snappy.DecodedLen(block)
	if err != nil {
		return dst, err
	}
	if len(dst)+n > DecompressedBytesMax {
		return dst, errDecompressedTooLarge
	}
	start := len(dst)
	dst = slices.Grow(dst, n)
	out, err := snappy.Decode(dst[start:start+n], block)
	if err != nil {
		return dst, err
	}
	if len(out) != n {
		panic(fmt.Sprintf("record: snappy decoded %d bytes, declared %d", len(out), n))
	}
	if n > 0 && &out[0] != &dst[start : start+n][0] {
		copy(dst[start:start+n], out)
	}
	return dst[:start+n], nil
}
