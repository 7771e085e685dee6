package broker

import (
	"encoding/binary"
	"io"
	stdnet "net"
	"testing"
	"time"
)

// connectionMetrics reads the node's connection metrics on its event loop.
func (r *runningNode) connectionMetrics(t *testing.T) ConnectionMetrics {
	t.Helper()
	result := make(chan ConnectionMetrics, 1)
	r.loop.Post(func() { result <- r.node.Metrics().Connections })
	select {
	case m := <-result:
		return m
	case <-time.After(hangGuard):
		t.Fatal("the event loop did not answer within the hang guard")
		return ConnectionMetrics{}
	}
}

// TestMalformedFramesOverTCPCloseAndCount sends what real clients must
// not over real TCP: a frame size above socket.request.max.bytes (which the
// network reports as an OnClose error), a negative size, and a frame of
// garbage (which the broker fails to decode). Each connection is closed by
// the broker and counted as malformed; a clean hang-up is not.
func TestMalformedFramesOverTCPCloseAndCount(t *testing.T) {
	r := startNode(t, t.TempDir(), nil)
	oversized := binary.BigEndian.AppendUint32(nil, 0x7fffffff)
	negative := binary.BigEndian.AppendUint32(nil, 0xffffffff)
	garbage := append(binary.BigEndian.AppendUint32(nil, 3), 0xff, 0xff, 0xff)
	for i, frame := range [][]byte{oversized, negative, garbage} {
		conn, err := stdnet.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(frame); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(hangGuard))
		if n, err := io.Copy(io.Discard, conn); err != nil || n != 0 {
			t.Fatalf("frame %d: read %d bytes, %v; want the broker to close the connection", i, n, err)
		}
		conn.Close()
	}
	clean, err := stdnet.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	clean.Close()
	deadline := time.Now().Add(hangGuard)
	for {
		m := r.connectionMetrics(t)
		if m.Closed == 4 {
			if m.ClosedMalformed != 3 || m.Accepted != 4 || m.Open != 0 {
				t.Fatalf("metrics %+v, want 4 accepted and closed, 3 of them malformed", m)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics %+v: the connections did not all close within the hang guard", m)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
