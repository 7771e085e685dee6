package main

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestSniffProduceErrors writes a Metadata and a Produce request header and
// reads their responses through a sniffConn's parsers, with the bytes cut
// into pieces of every size from 1 to the whole stream, and checks that
// only the Produce response's partition error is recorded, with the
// broker's message where the version carries one (v8 and later), for
// non-flexible (v7, v8) and flexible (v9) versions.
func TestSniffProduceErrors(t *testing.T) {
	for _, version := range []int16{7, 8, 9} {
		requests := append(requestHeader(kmsg.Metadata.Int16(), 12, 1), requestHeader(kmsg.Produce.Int16(), version, 2)...)
		metadata := responseFrame(1, false, kmsg.NewPtrMetadataResponse().AppendTo(nil))
		produce := kmsg.NewPtrProduceResponse()
		produce.Version = version
		topic := kmsg.NewProduceResponseTopic()
		topic.Topic = "events"
		partition := kmsg.NewProduceResponseTopicPartition()
		partition.ErrorCode = kerr.KafkaStorageError.Code
		partition.ErrorMessage = kmsg.StringPtr("no space left on device")
		topic.Partitions = append(topic.Partitions, partition)
		produce.Topics = append(produce.Topics, topic)
		responses := append(metadata, responseFrame(2, produce.IsFlexible(), produce.AppendTo(nil))...)
		for piece := 1; piece <= len(responses); piece++ {
			seen := &produceErrorSeen{}
			c := &sniffConn{seen: seen, versions: map[int32]int16{}}
			feed(c.parseRequests, requests, piece)
			feed(c.parseResponses, responses, piece)
			last := seen.last()
			withMessage := strings.Contains(last, "[broker: no space left on device]")
			if seen.count != 1 || !strings.HasPrefix(last, "KAFKA_STORAGE_ERROR (code 56)") || withMessage != (version >= 8) {
				t.Fatalf("v%d, pieces of %d bytes: recorded %d errors, last %q", version, piece, seen.count, last)
			}
		}
	}
}

// requestHeader is a request's size, key, version and correlation id,
// followed by a body of four bytes the parser must skip.
func requestHeader(key, version int16, correlation int32) []byte {
	b := binary.BigEndian.AppendUint32(nil, 8+4)
	b = binary.BigEndian.AppendUint16(b, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(correlation))
	return append(b, 0, 0, 0, 0)
}

// responseFrame is a response: size, correlation id, an empty tag buffer
// when the header is flexible, and the body.
func responseFrame(correlation int32, flexible bool, body []byte) []byte {
	header := binary.BigEndian.AppendUint32(nil, uint32(correlation))
	if flexible {
		header = append(header, 0)
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(len(header)+len(body)))
	return append(append(b, header...), body...)
}

// feed hands data to parse in pieces of size bytes.
func feed(parse func([]byte), data []byte, size int) {
	for len(data) > 0 {
		n := min(size, len(data))
		parse(data[:n])
		data = data[n:]
	}
}
