package checker

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// EncodeQuorumJSON writes h as indented JSON. The same history always gives
// the same bytes.
func EncodeQuorumJSON(w io.Writer, h *QuorumHistory) error {
	encoder := json.NewEncoder(w)
	encoder.SetIndent("", " ")
	if err := encoder.Encode(h); err != nil {
		return fmt.Errorf("checker: encode quorum history: %w", err)
	}
	return nil
}

// DecodeQuorumJSON reads a history written by EncodeQuorumJSON and
// validates it. Unknown fields are an error, so that a typo in a
// hand-written history is not silently ignored.
func DecodeQuorumJSON(r io.Reader) (QuorumHistory, error) {
	decoder := json.NewDecoder(r)
	decoder.DisallowUnknownFields()
	var h QuorumHistory
	if err := decoder.Decode(&h); err != nil {
		return QuorumHistory{}, fmt.Errorf("checker: decode quorum history: %w", err)
	}
	if err := h.Validate(); err != nil {
		return QuorumHistory{}, fmt.Errorf("checker: decode quorum history: %w", err)
	}
	return h, nil
}

// Text renders h as one trace in time order, one event per line, named as
// anomalies name them (node and event index); at equal times nodes follow
// their order in h and observations come last:
//
//	t=11 n1#4 state epoch=1 leader leader=1 vote=1
//	t=20 n2#5 log-end 10
//	t=21 n1#6 high-watermark 10
//	t=22 n1#7 applied 0 epoch=1 0B
//	t=30 n1#17 snapshot taken end=10 epoch=1 digest=8c1f03aa
//	t=30 client "admin" controller=1 epoch=1
func (h *QuorumHistory) Text() string {
	type line struct {
		time int64
		text string
	}
	var lines []line
	for _, node := range h.Nodes {
		for j, e := range node.Events {
			lines = append(lines, line{e.Time, fmt.Sprintf("t=%d n%d#%d %s", e.Time, node.ID, j, e.text())})
		}
	}
	for _, o := range h.Observations {
		lines = append(lines, line{o.Time, fmt.Sprintf("t=%d client %q controller=%d epoch=%d", o.Time, o.Client, o.Controller, o.Epoch)})
	}
	slices.SortStableFunc(lines, func(a, b line) int { return cmp.Compare(a.time, b.time) })
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.text)
		b.WriteByte('\n')
	}
	return b.String()
}

// text renders the event's kind and the fields it uses.
func (e *QuorumEvent) text() string {
	switch e.Kind {
	case QuorumEventState:
		return fmt.Sprintf("state epoch=%d %s leader=%d vote=%d", e.Epoch, e.Role, e.Leader, e.Vote)
	case QuorumEventHighWatermark, QuorumEventLogEnd, QuorumEventLogStart:
		return fmt.Sprintf("%s %d", e.Kind, e.Offset)
	case QuorumEventApplied:
		text := fmt.Sprintf("applied %d epoch=%d %dB", e.Offset, e.Epoch, len(e.Data))
		if e.Digest != "" {
			text += " digest=" + shortDigest(e.Digest)
		}
		return text
	case QuorumEventSnapshot:
		return fmt.Sprintf("snapshot %s end=%d epoch=%d digest=%s", e.Source, e.Offset, e.Epoch, shortDigest(e.Digest))
	}
	return string(e.Kind)
}

// shortDigest keeps the first 8 bytes of a digest, enough to tell two
// apart in a trace.
func shortDigest(digest string) string {
	if len(digest) > 8 {
		return digest[:8]
	}
	return digest
}
