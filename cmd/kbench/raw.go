package main

import (
	"encoding/binary"
	"fmt"
	"io"
	stdnet "net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Offsets of the fields a raw consumer reads in a record batch (v2)
// header.
const (
	batchLengthAt          = 8  // int32, the bytes after this field
	batchLastOffsetDeltaAt = 23 // int32
	batchRecordCountAt     = 57 // int32
	batchHeaderBytes       = 61
)

// consumeRaw reads topic's partitions from their start with a minimal
// client: Fetch v12 requests, one at a time on one connection, and only
// the batch headers of each response are read (for the next offsets and
// the record counts), as a consumer that hands whole batches on would. It
// shows what the server can deliver when the client does not decode and
// copy every record, which on this machine's two cores is what bounds
// franz-go's consumer. It stops once records records arrived.
func consumeRaw(addr, topic string, partitions int32, records int, fetch fetchSizes) (throughput, error) {
	conn, err := stdnet.Dial("tcp", addr)
	if err != nil {
		return throughput{}, err
	}
	defer conn.Close()
	offsets := make([]int64, partitions)
	var request, response []byte
	var got, recordBytes int64
	started := time.Now()
	for correlationID := int32(1); got < int64(records); correlationID++ {
		request = kmsg.NewRequestFormatter().AppendRequest(request[:0], rawFetchRequest(topic, offsets, fetch), correlationID)
		if _, err := conn.Write(request); err != nil {
			return throughput{}, err
		}
		if response, err = readFrame(conn, response); err != nil {
			return throughput{}, err
		}
		resp := kmsg.NewPtrFetchResponse()
		resp.SetVersion(12)
		if len(response) < 5 {
			return throughput{}, fmt.Errorf("short fetch response")
		}
		if err := resp.UnsafeReadFrom(response[5:]); err != nil { // correlation id and header tags
			return throughput{}, err
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 || p.Partition < 0 || p.Partition >= partitions {
					return throughput{}, fmt.Errorf("partition %d: error %d", p.Partition, p.ErrorCode)
				}
				count, next := batchRecords(p.RecordBatches, offsets[p.Partition])
				got += count
				recordBytes += int64(len(p.RecordBatches))
				offsets[p.Partition] = next
			}
		}
	}
	return throughput{records: got, valueBytes: recordBytes, elapsed: time.Since(started)}, nil
}

func rawFetchRequest(topic string, offsets []int64, fetch fetchSizes) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 500, 1, fetch.bytesMax
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	for partition, offset := range offsets {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = int32(partition), offset, fetch.partitionBytesMax, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// batchRecords walks whole batches and returns the records they hold and
// the offset after the last one (next when there is none).
func batchRecords(data []byte, next int64) (int64, int64) {
	var count int64
	for len(data) >= batchHeaderBytes {
		size := batchLengthAt + 4 + int(int32(binary.BigEndian.Uint32(data[batchLengthAt:])))
		if size < batchHeaderBytes || size > len(data) {
			break
		}
		base := int64(binary.BigEndian.Uint64(data))
		next = base + int64(int32(binary.BigEndian.Uint32(data[batchLastOffsetDeltaAt:]))) + 1
		count += int64(int32(binary.BigEndian.Uint32(data[batchRecordCountAt:])))
		data = data[size:]
	}
	return count, next
}

// readFrame reads one size-prefixed frame into buf's storage.
func readFrame(r io.Reader, buf []byte) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := int(int32(binary.BigEndian.Uint32(size[:])))
	if n < 0 || n > 1<<30 {
		return nil, fmt.Errorf("fetch response of %d bytes", n)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err := io.ReadFull(r, buf)
	return buf, err
}
