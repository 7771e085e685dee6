package net

import (
	"bytes"
	"testing"

	"github.com/kafkasim/kafkasim/core"
)

// listenWith starts a listener on 127.0.0.1:0 whose accepted connections
// get chanHandlers calling onFrame for every frame (on the loop), delivered
// on the returned channel.
func (h *harness) listenWith(onFrame func(c core.Conn, frame []byte)) (core.Listener, chan *chanHandler) {
	h.t.Helper()
	accepted := make(chan *chanHandler, 16)
	l, err := h.tcp.Listen("127.0.0.1:0", func(c core.Conn) core.ConnHandler {
		ch := newChanHandler(h.t, h.loop)
		ch.conn = c
		ch.onFrame = onFrame
		accepted <- ch
		return ch
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return l, accepted
}

// TestTCPRecycledFrameReuse sends one frame, recycles it once it has
// arrived, then sends a second frame, and checks whether the second was
// read into the first one's memory: it must be when the recycled frame
// holds it without wasting more than half, and must not be otherwise (a
// small frame pinning a large spare, a frame above spareFrameBytesMax
// kept). The second frame's content is checked in every case.
func TestTCPRecycledFrameReuse(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		recycledBytes, nextBytes int
		wantReused               bool
	}{
		{"same size", 100 << 10, 100 << 10, true},
		{"a few bytes larger fits the rounded capacity", 1<<20 + 100, 1<<20 + 900, true},
		{"above the first chunk", 3 << 20, 3<<20 - 5000, true},
		{"half of the spare", 256 << 10, 128 << 10, true},
		{"less than half of the spare", 256 << 10, 128<<10 - 1, false},
		{"a small frame after a large one", 1 << 20, 100, false},
		{"larger than the spare", 100, 1 << 20, false},
		{"spare above spareFrameBytesMax", spareFrameBytesMax + 1, spareFrameBytesMax + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, TCPOptions{})
			l, accepted := h.listenWith(nil)
			client, c := h.dial(l.Addr())
			client.next("open")
			h.do(func() { c.Send(testFrame(1, tc.recycledBytes)) })
			server := wait(t, accepted)
			first := server.next("frame").frame
			h.do(func() { server.conn.(core.FrameRecycler).RecycleFrame(first) })
			h.do(func() { c.Send(testFrame(2, tc.nextBytes)) })
			second := server.next("frame").frame
			if !bytes.Equal(second, testFrame(2, tc.nextBytes)) {
				t.Fatalf("second frame arrived changed")
			}
			reused := &first[:1][0] == &second[:1][0]
			if reused != tc.wantReused {
				t.Errorf("second frame read into the recycled one: %v, want %v", reused, tc.wantReused)
			}
			want := uint64(0)
			if tc.wantReused {
				want = 1
			}
			if got := server.conn.(*conn).FramesReused(); got != want {
				t.Errorf("FramesReused %d, want %d", got, want)
			}
		})
	}
}

// TestTCPHeldFramesAreNeverOverwritten streams 400 frames of sizes from
// 1 KiB to about 1.5 MiB (around the 1 MiB chunk and the rounding of
// frameRoundBytes) while the server recycles every frame whose index is
// not a multiple of 3, at once, and keeps the others. At the end every kept
// frame must still hold what was sent, and some frames must have been read
// into recycled ones (else the test would prove nothing). Run with -race,
// the detector also sees a reader writing a frame the loop still reads.
func TestTCPHeldFramesAreNeverOverwritten(t *testing.T) {
	const frames = 400
	sizes := make([]int, frames)
	totalBytes := 0
	for i := range sizes {
		sizes[i] = 1<<10 + (i*7919)%(1536<<10)
		totalBytes += sizes[i]
	}
	// All frames are queued at once, about 300 MB: the send queue must hold
	// them all, or the client's connection fails with ErrSendQueueFull
	// whenever its writer drains slower than the loop queues (a busy
	// machine), and the server sees a reset instead of frames.
	h := newHarness(t, TCPOptions{SendQueueBytesMax: 2 * totalBytes})
	var kept [][]byte
	received := 0
	l, accepted := h.listenWith(func(c core.Conn, frame []byte) {
		i := received
		received++
		if !bytes.Equal(frame, testFrame(i, sizes[i])) {
			t.Errorf("frame %d arrived changed", i)
		}
		if i%3 == 0 {
			kept = append(kept, frame)
			return
		}
		c.(core.FrameRecycler).RecycleFrame(frame)
	})
	client, c := h.dial(l.Addr())
	client.next("open")
	for i := range frames {
		h.do(func() { c.Send(testFrame(i, sizes[i])) })
	}
	server := wait(t, accepted)
	for range frames {
		server.next("frame")
	}
	h.do(func() {
		for k, frame := range kept {
			if i := 3 * k; !bytes.Equal(frame, testFrame(i, sizes[i])) {
				t.Errorf("kept frame %d was overwritten", i)
			}
		}
	})
	if reused := server.conn.(*conn).FramesReused(); reused == 0 {
		t.Errorf("no frame was read into a recycled one")
	} else {
		t.Logf("%d of %d frames read into recycled ones", reused, frames)
	}
}

// TestTCPRecycleKeepsBoundedDistinctFrames checks what a connection keeps:
// a frame recycled twice is kept once (two frames must never share
// memory), at most spareFramesMax frames, the largest, and nothing once the
// connection ended or after ReleaseRecycledFrames.
func TestTCPRecycleKeepsBoundedDistinctFrames(t *testing.T) {
	h := newHarness(t, TCPOptions{})
	l, accepted := h.listenWith(nil)
	client, c := h.dial(l.Addr())
	client.next("open")
	h.do(func() { c.Send([]byte("x")) })
	server := wait(t, accepted)
	server.next("frame")
	sc := server.conn.(*conn)
	capacities := func() []int {
		var got []int
		h.do(func() {
			sc.spareMu.Lock()
			defer sc.spareMu.Unlock()
			for _, spare := range sc.spares {
				got = append(got, cap(spare))
			}
		})
		return got
	}
	twice := make([]byte, 10)
	h.do(func() {
		sc.RecycleFrame(twice)
		sc.RecycleFrame(twice)
	})
	if got := capacities(); len(got) != 1 {
		t.Fatalf("after recycling one frame twice, spares %v, want one", got)
	}
	h.do(func() {
		sc.RecycleFrame(make([]byte, 30))
		sc.RecycleFrame(make([]byte, 20))
		sc.RecycleFrame(make([]byte, 5))
	})
	if got := capacities(); len(got) != spareFramesMax || got[0]+got[1] != 50 {
		t.Errorf("spares of capacities %v, want the %d largest (30 and 20)", got, spareFramesMax)
	}
	h.do(sc.ReleaseRecycledFrames)
	if got := capacities(); len(got) != 0 {
		t.Errorf("after ReleaseRecycledFrames, spares %v", got)
	}
	h.do(func() {
		c.Close()
		sc.RecycleFrame(make([]byte, 10))
	})
	server.next("close")
	h.do(func() { sc.RecycleFrame(make([]byte, 10)) })
	if got := capacities(); len(got) != 0 {
		t.Errorf("after the connection ended, spares %v", got)
	}
}

// BenchmarkTCPLargeFrames sends frames just above frameChunkBytes (as a
// Produce request carrying one 1 MiB batch) to a server that recycles each
// frame once it has it (recycle) or keeps none (allocate), to show the
// allocations per frame with -benchmem.
func BenchmarkTCPLargeFrames(b *testing.B) {
	for _, recycle := range []bool{false, true} {
		name := "allocate"
		if recycle {
			name = "recycle"
		}
		b.Run(name, func(b *testing.B) {
			const frameBytes = frameChunkBytes + 300
			h := newBenchHarness(b)
			frame := testFrame(1, frameBytes)
			received := make(chan struct{}, 1024)
			l, err := h.tcp.Listen("127.0.0.1:0", func(c core.Conn) core.ConnHandler {
				return handlerFuncs{frame: func(c core.Conn, f []byte) {
					if recycle {
						c.(core.FrameRecycler).RecycleFrame(f)
					}
					received <- struct{}{}
				}}
			})
			if err != nil {
				b.Fatal(err)
			}
			opened := make(chan core.Conn, 1)
			h.loop.Post(func() {
				h.tcp.Dial(l.Addr(), handlerFuncs{open: func(c core.Conn) { opened <- c }})
			})
			client := <-opened
			b.SetBytes(frameBytes)
			b.ReportAllocs()
			for b.Loop() {
				h.loop.Post(func() { client.Send(frame) })
				<-received
			}
		})
	}
}
