package main

import (
	"context"
	"encoding/binary"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Why a sniffer: kgo retries a retriable produce error (such as
// KAFKA_STORAGE_ERROR on a full disk) until the delivery timeout and then
// fails the record with "records have timed out", dropping the error code
// and the broker's message. To name the real cause, kctl reads the Produce
// responses on the wire as they pass and remembers the last error the
// broker gave.

// sniffFrameBytesMax bounds one buffered response frame; a larger frame (a
// fetch, which produce clients do not send) is passed through unread.
const sniffFrameBytesMax = 16 << 20

// produceErrorSeen is the last partition error a broker put in a Produce
// response.
type produceErrorSeen struct {
	mu      sync.Mutex
	err     error
	message string
	count   int
}

// record remembers one partition error.
func (s *produceErrorSeen) record(code int16, message *string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = kerr.ErrorForCode(code)
	s.message = ""
	if message != nil {
		s.message = *message
	}
	s.count++
}

// last is the last error seen as one line, or "" when the broker never
// answered a Produce with an error.
func (s *produceErrorSeen) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		return ""
	}
	return kafkaError(s.err, s.message)
}

// dialer returns a kgo dialer whose connections report Produce errors to s.
func (s *produceErrorSeen) dialer(timeout time.Duration) func(ctx context.Context, network, host string) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	return func(ctx context.Context, network, host string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, host)
		if err != nil {
			return nil, err
		}
		return &sniffConn{Conn: conn, seen: s, versions: map[int32]int16{}}, nil
	}
}

// sniffConn parses the request headers it writes and the Produce responses
// it reads. kgo writes and reads on different goroutines, hence the lock.
type sniffConn struct {
	net.Conn
	seen *produceErrorSeen

	mu       sync.Mutex
	written  []byte          // an incomplete request header
	skipOut  int             // request bytes still to pass unparsed
	versions map[int32]int16 // correlation id -> Produce version
	read     []byte          // an incomplete response frame
	skipIn   int             // response bytes still to pass unparsed
}

func (c *sniffConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.parseRequests(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *sniffConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.parseResponses(p[:n])
	c.mu.Unlock()
	return n, err
}

// parseRequests notes the version and correlation id of each Produce
// request: size(4) key(2) version(2) correlation(4).
func (c *sniffConn) parseRequests(p []byte) {
	for len(p) > 0 {
		if c.skipOut > 0 {
			skip := min(c.skipOut, len(p))
			c.skipOut -= skip
			p = p[skip:]
			continue
		}
		need := 12 - len(c.written)
		take := min(need, len(p))
		c.written = append(c.written, p[:take]...)
		p = p[take:]
		if len(c.written) < 12 {
			return
		}
		size := int(int32(binary.BigEndian.Uint32(c.written)))
		key := int16(binary.BigEndian.Uint16(c.written[4:]))
		version := int16(binary.BigEndian.Uint16(c.written[6:]))
		correlation := int32(binary.BigEndian.Uint32(c.written[8:]))
		if key == kmsg.Produce.Int16() && len(c.versions) < 1024 {
			c.versions[correlation] = version
		}
		c.skipOut = max(size-8, 0)
		c.written = c.written[:0]
	}
}

// parseResponses buffers each response frame of a noted Produce request
// and reads its partition errors.
func (c *sniffConn) parseResponses(p []byte) {
	for len(p) > 0 {
		if c.skipIn > 0 {
			skip := min(c.skipIn, len(p))
			c.skipIn -= skip
			p = p[skip:]
			continue
		}
		if len(c.read) < 8 {
			take := min(8-len(c.read), len(p))
			c.read = append(c.read, p[:take]...)
			p = p[take:]
			if len(c.read) < 8 {
				return
			}
			size := int(int32(binary.BigEndian.Uint32(c.read)))
			correlation := int32(binary.BigEndian.Uint32(c.read[4:]))
			if _, ok := c.versions[correlation]; !ok || size > sniffFrameBytesMax || size < 4 {
				delete(c.versions, correlation)
				c.skipIn = max(size-4, 0)
				c.read = c.read[:0]
				continue
			}
		}
		size := int(int32(binary.BigEndian.Uint32(c.read)))
		take := min(size+4-len(c.read), len(p))
		c.read = append(c.read, p[:take]...)
		p = p[take:]
		if len(c.read) < size+4 {
			return
		}
		c.produceResponse(c.read[4:])
		c.read = c.read[:0]
	}
}

// produceResponse decodes one Produce response (correlation id first) and
// records its partition errors.
func (c *sniffConn) produceResponse(frame []byte) {
	correlation := int32(binary.BigEndian.Uint32(frame))
	version := c.versions[correlation]
	delete(c.versions, correlation)
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = version
	body := frame[4:]
	if resp.IsFlexible() {
		body = skipTags(body)
	}
	if body == nil || resp.ReadFrom(body) != nil {
		return
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				c.seen.record(p.ErrorCode, p.ErrorMessage)
			}
		}
	}
}

// skipTags skips a flexible response header's tagged fields; nil when
// they are malformed.
func skipTags(b []byte) []byte {
	count, n := binary.Uvarint(b)
	if n <= 0 {
		return nil
	}
	b = b[n:]
	for range count {
		if _, n = binary.Uvarint(b); n <= 0 {
			return nil
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < size {
			return nil
		}
		b = b[n+int(size):]
	}
	return b
}
