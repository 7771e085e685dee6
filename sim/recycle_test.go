package sim

import (
	"bytes"
	"testing"

	"github.com/kafkasim/kafkasim/core"
)

// TestRecycledFramesArePoisoned: a frame a node hands back is overwritten
// at once, as the production network may reuse it, so that a node still
// reading it reads poison (sim/scenario's progress probe then fails the run).
func TestRecycledFramesArePoisoned(t *testing.T) {
	var e endpoint
	var recycler core.FrameRecycler = &e
	frame := []byte("a produce request")
	recycler.RecycleFrame(frame)
	if want := bytes.Repeat([]byte{recycledFrameByte}, len(frame)); !bytes.Equal(frame, want) {
		t.Fatalf("recycled frame %q, want it all %#x", frame, recycledFrameByte)
	}
	recycler.ReleaseRecycledFrames()
}
