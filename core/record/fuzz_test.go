package record

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// updateFuzzCorpus regenerates the seed batches in testdata/fuzz:
//
//	go test ./core/record -run TestFuzzCorpus -update-fuzz-corpus
var updateFuzzCorpus = flag.Bool("update-fuzz-corpus", false, "rewrite the generated fuzz seed corpus")

// fuzzTargets are the fuzz functions that share the generated seeds.
var fuzzTargets = []string{"FuzzValidate", "FuzzRecords"}

// checkErrorClass fails the test unless err is nil or wraps ErrCorrupt or
// ErrTruncated: the only ways this package may reject bytes.
func checkErrorClass(t *testing.T, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTruncated) {
		t.Fatalf("error %v wraps neither ErrCorrupt nor ErrTruncated", err)
	}
}

// FuzzValidate gives arbitrary bytes to Validate: it must never panic and
// must reject with ErrCorrupt or ErrTruncated; what it accepts must be
// exactly one batch with a matching CRC.
func FuzzValidate(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := Validate(data)
		checkErrorClass(t, err)
		if err == nil && (h.TotalBytes() != len(data) || ComputeCRC(data) != h.CRC) {
			t.Fatalf("accepted a batch of %d bytes given %d, crc %x", h.TotalBytes(), len(data), h.CRC)
		}
	})
}

// FuzzRecords gives arbitrary bytes to the record decoder twice: as they
// are, and with the length and CRC fields fixed up so that the fuzzer
// reaches decompression and record decoding. Neither may panic; every
// rejection wraps ErrCorrupt or ErrTruncated; an accepted batch yields
// exactly recordCount records with increasing offsets.
func FuzzRecords(f *testing.F) {
	var r Reader
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeChecked(t, &r, data)
		if len(data) >= HeaderBytes {
			decodeChecked(t, &r, reseal(append([]byte(nil), data...)))
		}
	})
}

func decodeChecked(t *testing.T, r *Reader, batch []byte) {
	count := 0
	last := int64(-1)
	h, err := r.Records(batch, func(rec *Record) error {
		if rec.Offset <= last {
			t.Fatalf("offset %d after %d", rec.Offset, last)
		}
		last = rec.Offset
		count++
		return nil
	})
	checkErrorClass(t, err)
	if err == nil && count != int(h.RecordCount) {
		t.Fatalf("decoded %d records, header says %d", count, h.RecordCount)
	}
}

// seedBatches returns one valid batch per codec plus a control batch, named
// for the corpus files.
func seedBatches(t *testing.T) map[string][]byte {
	seeds := map[string][]byte{}
	for _, codec := range allCodecs {
		spec := NewBatchSpec(codec)
		spec.ProducerID, spec.ProducerEpoch, spec.BaseSequence = 3, 1, 10
		batch, err := AppendBatch(nil, spec, sampleRecords(6, 20))
		if err != nil {
			t.Fatal(err)
		}
		seeds["batch-"+codec.String()] = batch
	}
	spec := NewBatchSpec(CodecNone)
	spec.ProducerID = 3
	control, err := AppendControlBatch(nil, spec, true, 2, 1000)
	if err != nil {
		t.Fatal(err)
	}
	seeds["batch-control"] = control
	section := recordsSection(t, sampleRecords(4, 30))
	seeds["batch-xerial"] = withPayload(t, sampleRecords(4, 30), CodecSnappy,
		xerialFrame(snappyBlock(section[:20]), snappyBlock(section[20:])))
	return seeds
}

func snappyBlock(b []byte) []byte { return appendSnappyBlock(nil, b) }

// TestFuzzCorpus checks that the committed seed corpus holds a valid batch
// for every codec (plus a control batch and a xerial-framed one), so that the
// plain `go test` run of the fuzz targets exercises each decoder. With
// -update-fuzz-corpus it first rewrites the seeds.
func TestFuzzCorpus(t *testing.T) {
	seeds := seedBatches(t)
	for _, target := range fuzzTargets {
		dir := filepath.Join("testdata", "fuzz", target)
		for name, batch := range seeds {
			path := filepath.Join(dir, name)
			if *updateFuzzCorpus {
				writeCorpusFile(t, path, batch)
			}
			stored := readCorpusFile(t, path)
			h, err := ValidateRecords(stored)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			want, _ := ParseHeader(batch)
			if h.Attributes != want.Attributes || h.RecordCount != want.RecordCount {
				t.Fatalf("%s: header %+v, want attributes %v", path, h, want.Attributes)
			}
		}
	}
}

func writeCorpusFile(t *testing.T, path string, data []byte) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(data)))
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readCorpusFile(t *testing.T, path string) []byte {
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate with -update-fuzz-corpus)", err)
	}
	lines := strings.Split(strings.TrimSpace(string(text)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" {
		t.Fatalf("%s: not a one-value corpus file", path)
	}
	quoted, ok := strings.CutPrefix(lines[1], "[]byte(")
	quoted, ok2 := strings.CutSuffix(quoted, ")")
	data, err := strconv.Unquote(quoted)
	if !ok || !ok2 || err != nil {
		t.Fatalf("%s: cannot parse %q: %v", path, lines[1], err)
	}
	return []byte(data)
}
