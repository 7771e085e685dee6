package net

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/kafkasim/kafkasim/core"
)

// frameCounter is what net's connections offer beyond core.Conn so that a
// node can reuse its frames (see conn.FramesWritten).
type frameCounter interface {
	FramesQueued() uint64
	FramesWritten() uint64
}

// TestTCPFramesWrittenAllowsReuse sends 300 frames from two buffers used
// in turn, each reused (overwritten with the next frame's bytes) only once
// FramesWritten has reached the FramesQueued count read right after it was
// sent, and checks that the peer receives every frame as it was when sent:
// the writer counts a frame written only after it stopped reading it.
func TestTCPFramesWrittenAllowsReuse(t *testing.T) {
	h := newHarness(t, TCPOptions{})
	l, accepted := h.listen(false)
	client := newChanHandler(t, h.loop)
	var c core.Conn
	h.do(func() { c = h.tcp.Dial(l.Addr(), client) })
	client.next("open")
	server := wait(t, accepted)
	counter := c.(frameCounter)
	const frames, frameBytes = 300, 64 << 10
	buffers := [2][]byte{make([]byte, frameBytes), make([]byte, frameBytes)}
	var tickets [2]uint64
	for i := range frames {
		slot := i % 2
		for {
			var written uint64
			h.do(func() { written = counter.FramesWritten() })
			if written >= tickets[slot] {
				break
			}
			runtime.Gosched()
		}
		copy(buffers[slot], testFrame(i, frameBytes))
		h.do(func() {
			c.Send(buffers[slot])
			tickets[slot] = counter.FramesQueued()
		})
	}
	for i := range frames {
		if got := server.next("frame").frame; !bytes.Equal(got, testFrame(i, frameBytes)) {
			t.Fatalf("frame %d changed after it was sent", i)
		}
	}
	var queued uint64
	h.do(func() { queued = counter.FramesQueued() })
	if queued != frames {
		t.Errorf("FramesQueued %d, want %d", queued, frames)
	}
}
