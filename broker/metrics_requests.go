package broker

import (
	"reflect"
	"time"

	"github.com/kafkasim/kafkasim/core/record"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// requestCountersFor returns the counters of an API, creating them on first
// use.
func (m *nodeMetrics) requestCountersFor(apiKey int16) *requestCounters {
	if m.requests == nil {
		m.requests = make(map[int16]*requestCounters)
	}
	r := m.requests[apiKey]
	if r == nil {
		r = &requestCounters{errors: make(map[int16]int64)}
		m.requests[apiKey] = r
	}
	return r
}

// topicCountersFor returns the counters of a topic, creating them on first
// use.
func (m *nodeMetrics) topicCountersFor(topic string) *topicCounters {
	if m.topics == nil {
		m.topics = make(map[string]*topicCounters)
	}
	t := m.topics[topic]
	if t == nil {
		t = &topicCounters{}
		m.topics[topic] = t
	}
	return t
}

// requestStarted counts a request whose handler starts now, after it waited
// queued in its connection.
func (m *nodeMetrics) requestStarted(apiKey int16, queued time.Duration) {
	m.requestCountersFor(apiKey).requests++
	m.requestQueueTime.observe(queued)
}

// requestAnswered records an answered request: its latency since the frame
// arrived, the error codes of its response, and for Fetch the records and
// bytes sent per topic. A nil resp (acks=0 produce) has no error codes.
func (m *nodeMetrics) requestAnswered(apiKey int16, resp kmsg.Response, latency time.Duration) {
	r := m.requestCountersFor(apiKey)
	r.latency.observe(latency)
	switch resp := resp.(type) {
	case nil:
	case *kmsg.ProduceResponse:
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				r.countError(p.ErrorCode)
			}
		}
	case *kmsg.FetchResponse:
		r.countError(resp.ErrorCode)
		m.countFetched(r, resp)
	default:
		countErrorCodes(reflect.ValueOf(resp), r.countError)
	}
}

// countError counts one error code; NONE is not an error.
func (r *requestCounters) countError(code int16) {
	if code != 0 {
		r.errors[code]++
	}
}

// countFetched counts the errors of a Fetch response and the records and
// bytes it sends per topic.
func (m *nodeMetrics) countFetched(r *requestCounters, resp *kmsg.FetchResponse) {
	for _, t := range resp.Topics {
		var messages, bytes int64
		for _, p := range t.Partitions {
			r.countError(p.ErrorCode)
			messages += recordsIn(p.RecordBatches)
			bytes += int64(len(p.RecordBatches))
		}
		// Only data creates a topic's entry: a fetch of an unknown name
		// sends none, so clients cannot grow the map with made-up names.
		if bytes > 0 {
			counters := m.topicCountersFor(t.Topic)
			counters.messagesOut += messages
			counters.bytesOut += bytes
		}
	}
}

// recordsIn counts the records of the whole batches in data (a fetch
// response's record bytes): the sum of their headers' record counts.
func recordsIn(data []byte) int64 {
	var count int64
	for len(data) >= record.HeaderBytes {
		h, err := record.ParseHeader(data)
		if err != nil || h.TotalBytes() > len(data) || h.TotalBytes() <= 0 {
			break
		}
		count += int64(h.RecordCount)
		data = data[h.TotalBytes():]
	}
	return count
}

// produced counts a partition's produce outcome for its topic: the batch's
// records and bytes when it was appended. api_produce.go calls it for every
// partition of a request; failed appends count only as errors of the
// request.
func (m *nodeMetrics) produced(topic string, batch []byte, result appendResult, err error) {
	if err != nil || result.lastOffset < result.baseOffset {
		return
	}
	t := m.topicCountersFor(topic)
	t.messagesIn += result.lastOffset - result.baseOffset + 1
	t.bytesIn += int64(len(batch))
}

// countErrorCodes calls count with every ErrorCode field of a response,
// at any depth. The hot APIs (Produce, Fetch) are counted without
// reflection above; the others are answered at a human's pace.
func countErrorCodes(v reflect.Value, count func(int16)) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			countErrorCodes(v.Elem(), count)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range v.NumField() {
			field := v.Field(i)
			if t.Field(i).Name == "ErrorCode" && field.Kind() == reflect.Int16 {
				count(int16(field.Int()))
				continue
			}
			if t.Field(i).IsExported() {
				countErrorCodes(field, count)
			}
		}
	case reflect.Slice:
		if kind := v.Type().Elem().Kind(); kind != reflect.Struct && kind != reflect.Pointer {
			return
		}
		for i := range v.Len() {
			countErrorCodes(v.Index(i), count)
		}
	}
}
