package broker

import (
	"testing"

	"github.com/kafkasim/kafkasim/core/record"
)

// TestCompressionTypeTargets checks what each compression.type value asks
// of the produce path, with Kafka's meanings (LogConfig and LogValidator):
// producer keeps every batch as sent; uncompressed and each codec make the
// broker rewrite batches that arrive in another codec. The default (no
// override) is producer.
func TestCompressionTypeTargets(t *testing.T) {
	cases := []struct {
		value      string
		codec      record.Codec
		recompress bool
	}{
		{"", record.CodecNone, false},
		{"producer", record.CodecNone, false},
		{"uncompressed", record.CodecNone, true},
		{"gzip", record.CodecGzip, true},
		{"snappy", record.CodecSnappy, true},
		{"lz4", record.CodecLZ4, true},
		{"zstd", record.CodecZstd, true},
	}
	for _, c := range cases {
		var overrides map[string]string
		if c.value != "" {
			overrides = map[string]string{"compression.type": c.value}
		}
		config, err := resolveTopicConfig(DefaultConfig(), overrides)
		if err != nil {
			t.Fatalf("%q: %v", c.value, err)
		}
		if codec, recompress := config.targetCodec(); codec != c.codec || recompress != c.recompress {
			t.Errorf("compression.type=%q: codec %v recompress %v; want %v %v", c.value, codec, recompress, c.codec, c.recompress)
		}
	}
	for _, bad := range []string{"GZIP", "none", "brotli", ""} {
		if _, err := resolveTopicConfig(DefaultConfig(), map[string]string{"compression.type": bad}); err == nil {
			t.Errorf("compression.type=%q accepted", bad)
		}
	}
}
