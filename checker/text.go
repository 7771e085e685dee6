package checker

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// EncodeJSON writes h as indented JSON. The encoding is deterministic: the
// same history always gives the same bytes.
func EncodeJSON(w io.Writer, h *History) error {
	encoder := json.NewEncoder(w)
	encoder.SetIndent("", " ")
	if err := encoder.Encode(h); err != nil {
		return fmt.Errorf("checker: encode history: %w", err)
	}
	return nil
}

// DecodeJSON reads a history written by EncodeJSON and validates it. Unknown
// fields are an error, so that a typo in a hand-written history is not
// silently ignored.
func DecodeJSON(r io.Reader) (History, error) {
	decoder := json.NewDecoder(r)
	decoder.DisallowUnknownFields()
	var h History
	if err := decoder.Decode(&h); err != nil {
		return History{}, fmt.Errorf("checker: decode history: %w", err)
	}
	if err := h.Validate(); err != nil {
		return History{}, fmt.Errorf("checker: decode history: %w", err)
	}
	return h, nil
}

// Text renders h one operation per line, then one line per end offset, in a
// compact deterministic form meant for failure reports and golden files:
//
//	#3 c1/s0 [100,250] produce t-0 ok "p1-4" pid=1 idem acks=all seq=4 durable @7
//	#4 c2/s0 [120,300] poll t-0 ok from=7 [7:"p1-4" 8:"p0-2"]
//	#5 c2/s0 [310,320] commit t-0 ok group=g @9
//	end t-0 @9
//	damage t-0 [4,6] corruption at 1500
func (h *History) Text() string {
	var b strings.Builder
	for i := range h.Ops {
		b.WriteString(h.Ops[i].text(i))
		b.WriteByte('\n')
	}
	for _, e := range h.Ends {
		fmt.Fprintf(&b, "end %s @%d", TopicPartition{Topic: e.Topic, Partition: e.Partition}, e.Offset)
		if e.Error != "" {
			fmt.Fprintf(&b, " error=%s", e.Error)
		}
		b.WriteByte('\n')
	}
	for _, d := range h.Damage {
		fmt.Fprintf(&b, "damage %s [%d,%d] %s at %d\n", TopicPartition{Topic: d.Topic, Partition: d.Partition}, d.FirstOffset, d.LastOffset, d.Kind, d.At)
	}
	return b.String()
}

// text renders op, named by its index, on one line.
func (op *Op) text(index int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d c%d/s%d [%d,%d] %s %s %s", index, op.Client, op.Process,
		op.Call, op.Return, op.Kind, op.TopicPartition(), op.Outcome)
	switch {
	case op.Produce != nil:
		b.WriteString(op.Produce.text(op.Outcome))
	case op.Poll != nil:
		b.WriteString(op.Poll.text())
	case op.Group != nil:
		if op.Group.Group != "" {
			fmt.Fprintf(&b, " group=%s", op.Group.Group)
		}
		fmt.Fprintf(&b, " @%d", op.Group.Offset)
	case op.Lookup != nil:
		fmt.Fprintf(&b, " time=%d", op.Lookup.Target)
		if op.Outcome == OutcomeOK {
			fmt.Fprintf(&b, " @%d ts=%d", op.Lookup.Offset, op.Lookup.Timestamp)
		}
	}
	return b.String()
}

func (p *Produce) text(outcome Outcome) string {
	var b strings.Builder
	fmt.Fprintf(&b, " %q pid=%d", p.Value, p.ProducerID)
	if p.Idempotent {
		b.WriteString(" idem")
	}
	fmt.Fprintf(&b, " acks=%s seq=%d", acksText(p.Acks), p.Seq)
	if p.Durable {
		b.WriteString(" durable")
	}
	if s := p.Sequence; s != nil {
		fmt.Fprintf(&b, " kafka=%d/%d#%d", s.ProducerID, s.Epoch, s.Sequence)
	}
	if p.BatchRecords > 0 {
		fmt.Fprintf(&b, " batch=%dB/%d", p.BatchBytes, p.BatchRecords)
	}
	if p.Timestamp != 0 {
		fmt.Fprintf(&b, " ts=%d", p.Timestamp)
	}
	if outcome == OutcomeOK && p.Acks != AcksNone {
		fmt.Fprintf(&b, " @%d", p.Offset)
	}
	return b.String()
}

func acksText(acks int8) string {
	if acks == AcksAll {
		return "all"
	}
	return fmt.Sprint(acks)
}

func (p *Poll) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, " from=%d", p.FetchOffset)
	if p.Group != "" {
		fmt.Fprintf(&b, " group=%s", p.Group)
	}
	if p.Isolation == IsolationReadCommitted {
		b.WriteString(" read_committed")
	}
	if p.OutOfRange {
		b.WriteString(" out-of-range-reset")
	} else if p.Reset {
		b.WriteString(" reset")
	}
	if p.Final {
		b.WriteString(" final")
	}
	if p.Error != "" {
		b.WriteString(" error=" + p.Error)
	}
	b.WriteString(" [")
	b.WriteString(recordsText(p.Records))
	b.WriteString("]")
	return b.String()
}

// recordsText renders records as `7:"p1-4" 8:"p0-2"`.
func recordsText(records []Record) string {
	parts := make([]string, len(records))
	for i, r := range records {
		parts[i] = fmt.Sprintf("%d:%q", r.Offset, r.Value)
		if r.Timestamp != 0 {
			parts[i] += fmt.Sprintf("@%d", r.Timestamp)
		}
	}
	return strings.Join(parts, " ")
}
