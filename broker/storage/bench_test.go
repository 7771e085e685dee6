//go:build linux

package storage

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/kafkasim/kafkasim/core/record"
	"github.com/kafkasim/kafkasim/disk"
)

// Benchmarks of the log on the real disk (package disk over os), each next
// to the raw speed of the same file system for the same byte stream and the
// same sync policy (fdatasync, as disk.File.Sync uses), so that the figures
// read as a ratio against the machine's limit. docs/performance.md records
// them.

// benchRetentionBytes bounds the disk space a benchmark run uses.
const benchRetentionBytes = 2 << 30

// benchBatch builds a realistic uncompressed producer batch of records of
// recordBytes value bytes each, about batchBytes in total, with the record
// package's builder.
func benchBatch(b *testing.B, recordBytes, batchBytes int) ([]byte, int) {
	value := make([]byte, recordBytes)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	count := max(1, batchBytes/(recordBytes+10))
	records := make([]record.Record, count)
	for i := range records {
		records[i] = record.Record{Timestamp: epoch0.UnixMilli(), Value: value}
	}
	batch, err := record.AppendBatch(nil, record.NewBatchSpec(record.CodecNone), records)
	if err != nil {
		b.Fatal(err)
	}
	return batch, count
}

type benchShape struct {
	name                    string
	recordBytes, batchBytes int
	syncEach                bool
}

func benchShapes() []benchShape {
	var shapes []benchShape
	for _, sync := range []bool{false, true} {
		for _, recordBytes := range []int{100, 1024} {
			for _, batchBytes := range []int{16 << 10, 1 << 20} {
				policy := "nosync"
				if sync {
					policy = "sync"
				}
				name := fmt.Sprintf("record=%dB/batch=%dKiB/%s", recordBytes, batchBytes>>10, policy)
				shapes = append(shapes, benchShape{name, recordBytes, batchBytes, sync})
			}
		}
	}
	return shapes
}

// BenchmarkAppend measures Log.Append on the real disk in bytes per second,
// records per second and allocations per record.
func BenchmarkAppend(b *testing.B) {
	for _, shape := range benchShapes() {
		b.Run(shape.name, func(b *testing.B) {
			fsys, err := disk.New(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			config := DefaultConfig()
			config.RetentionBytes = benchRetentionBytes
			batch, count := benchBatch(b, shape.recordBytes, shape.batchBytes)
			if shape.syncEach {
				config.FlushIntervalMessages = int64(count)
			}
			l, err := Open(fsys, "topic-0", config, epoch0)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			b.SetBytes(int64(len(batch)))
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			segments := 1
			for b.Loop() {
				if _, _, err := l.Append(batch, 1, epoch0); err != nil {
					b.Fatal(err)
				}
				if n := len(l.segments); n != segments {
					segments = n
					if _, err := l.DeleteOldSegments(epoch0); err != nil {
						b.Fatal(err)
					}
				}
			}
			runtime.ReadMemStats(&after)
			reportPerRecord(b, count, after.Mallocs-before.Mallocs)
		})
	}
}

// BenchmarkRawWrite writes the same batches with os.File.Write, with the
// same sync policy and the same file rotation as the log (a new file every
// SegmentBytesMax, the oldest removed beyond benchRetentionBytes, the full
// file synced before the next starts): the file system's sequential write
// speed for this stream.
func BenchmarkRawWrite(b *testing.B) {
	for _, shape := range benchShapes() {
		b.Run(shape.name, func(b *testing.B) {
			batch, count := benchBatch(b, shape.recordBytes, shape.batchBytes)
			w := rawWriter{dir: b.TempDir(), fileBytesMax: DefaultConfig().SegmentBytesMax}
			defer w.close()
			b.SetBytes(int64(len(batch)))
			for b.Loop() {
				if err := w.write(batch, shape.syncEach); err != nil {
					b.Fatal(err)
				}
			}
			reportPerRecord(b, count, 0)
		})
	}
}

// rawWriter writes a stream into rotating files with plain os calls.
type rawWriter struct {
	dir          string
	fileBytesMax int64
	file         *os.File
	written      int64
	names        []string
}

func (w *rawWriter) write(p []byte, syncEach bool) error {
	if w.file == nil || w.written+int64(len(p)) > w.fileBytesMax {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	if _, err := w.file.Write(p); err != nil {
		return err
	}
	w.written += int64(len(p))
	if syncEach {
		return syscall.Fdatasync(int(w.file.Fd()))
	}
	return nil
}

func (w *rawWriter) rotate() error {
	if w.file != nil {
		if err := syscall.Fdatasync(int(w.file.Fd())); err != nil {
			return err
		}
		w.file.Close()
	}
	name := filepath.Join(w.dir, fmt.Sprintf("%020d.log", len(w.names)))
	file, err := os.Create(name)
	if err != nil {
		return err
	}
	w.file, w.written, w.names = file, 0, append(w.names, name)
	if int64(len(w.names)-1)*w.fileBytesMax > benchRetentionBytes {
		if err := os.Remove(w.names[0]); err != nil {
			return err
		}
		w.names = w.names[1:]
	}
	return nil
}

func (w *rawWriter) close() {
	if w.file != nil {
		w.file.Close()
	}
}

func reportPerRecord(b *testing.B, recordsPerBatch int, mallocs uint64) {
	records := float64(b.N) * float64(recordsPerBatch)
	b.ReportMetric(records/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(mallocs)/records, "allocs/record")
}

// benchReadLogBytes is how much data the read benchmarks read, in a loop.
const benchReadLogBytes = 256 << 20

// BenchmarkRead measures sequential Log.Read with 1 MiB fetches over a log
// that sits in the page cache, like a consumer that keeps up.
func BenchmarkRead(b *testing.B) {
	fsys, err := disk.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	l, err := Open(fsys, "topic-0", DefaultConfig(), epoch0)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	batch, _ := benchBatch(b, 1024, 1<<20)
	for l.Size() < benchReadLogBytes {
		if _, _, err := l.Append(batch, 1, epoch0); err != nil {
			b.Fatal(err)
		}
	}
	buf := make([]byte, 0, 2<<20)
	offset := int64(0)
	var total int64
	for b.Loop() {
		buf, err = l.Read(offset, 1<<20, math.MaxInt64, buf[:0])
		if err != nil {
			b.Fatal(err)
		}
		total += int64(len(buf))
		h, _ := record.ParseHeader(buf[len(buf)-len(batch):])
		if offset = h.NextOffset(); offset >= l.LogEndOffset() {
			offset = 0
		}
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds()/1e6, "MB/s")
}

// BenchmarkRawRead reads the same bytes with os.File.ReadAt in 1 MiB chunks.
func BenchmarkRawRead(b *testing.B) {
	file, err := os.Create(filepath.Join(b.TempDir(), "raw.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer file.Close()
	chunk := make([]byte, 1<<20)
	for written := 0; written < benchReadLogBytes; written += len(chunk) {
		if _, err := file.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	position := int64(0)
	var total int64
	for b.Loop() {
		n, err := file.ReadAt(chunk, position)
		if err != nil {
			b.Fatal(err)
		}
		total += int64(n)
		if position += int64(n); position >= benchReadLogBytes {
			position = 0
		}
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds()/1e6, "MB/s")
}
