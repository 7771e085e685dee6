package main

import (
	"fmt"
	stdnet "net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core/record"
)

// rawProduceBatchBytes is the size of the batches the minimal producer
// sends, as franz-go's producer with kbench's 1 MiB batch limit builds.
const rawProduceBatchBytes = 1 << 20

// rawProduceInFlightMax is how many Produce requests the minimal producer
// keeps on its connection at once (Kafka's default
// max.in.flight.requests.per.connection is 5).
const rawProduceInFlightMax = 5

// produceRaw writes records records of valueBytes to topic's partitions,
// round robin, with a minimal client: batches built once (uncompressed,
// the same payloads as the kgo producer) and sent again and again in
// Produce v7 requests with acks=all, up to rawProduceInFlightMax on one
// connection. It shows what the server can take when the client does not
// build and compress every record, which on this machine's two cores is
// what bounds franz-go's producer.
func produceRaw(addr, topic string, partitions int32, records, valueBytes int) (throughput, error) {
	values := payloads(valueBytes)
	var recs []record.Record
	for batchBytes := 0; batchBytes+valueBytes+32 < rawProduceBatchBytes && len(recs) < records; batchBytes += valueBytes + 32 {
		recs = append(recs, record.Record{Value: values[len(recs)%len(values)], Timestamp: time.Now().UnixMilli()})
	}
	batch, err := record.AppendBatch(nil, record.NewBatchSpec(record.CodecNone), recs)
	if err != nil {
		return throughput{}, err
	}
	conn, err := stdnet.Dial("tcp", addr)
	if err != nil {
		return throughput{}, err
	}
	defer conn.Close()
	var request, response []byte
	sent, answered := 0, 0
	var sentRecords, sentBytes int64
	started := time.Now()
	partition := int32(0)
	for answered < sent || sentRecords < int64(records) {
		for sent-answered < rawProduceInFlightMax && sentRecords < int64(records) {
			req := kmsg.NewPtrProduceRequest()
			req.SetVersion(7)
			req.Acks, req.TimeoutMillis = -1, 30_000
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition, rp.Records = partition, batch
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			sent++
			request = kmsg.NewRequestFormatter().AppendRequest(request[:0], req, int32(sent))
			if _, err := conn.Write(request); err != nil {
				return throughput{}, err
			}
			sentRecords += int64(len(recs))
			sentBytes += int64(len(recs) * valueBytes)
			partition = (partition + 1) % partitions
		}
		if response, err = readFrame(conn, response); err != nil {
			return throughput{}, err
		}
		answered++
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(7)
		if len(response) < 4 {
			return throughput{}, fmt.Errorf("short produce response")
		}
		if err := resp.ReadFrom(response[4:]); err != nil { // after the correlation id
			return throughput{}, err
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return throughput{}, fmt.Errorf("produce to partition %d: error %d", p.Partition, p.ErrorCode)
				}
			}
		}
	}
	return throughput{records: sentRecords, valueBytes: sentBytes, elapsed: time.Since(started)}, nil
}
