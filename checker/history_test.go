package checker

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestJSONRoundTrip encodes the baseline history and a generated one,
// decodes them, and requires the same history back and the same bytes on a
// second encoding.
func TestJSONRoundTrip(t *testing.T) {
	generated := benchHistory(400, 2, 5)
	for name, h := range map[string]*History{"baseline": &baseline().h, "generated": &generated} { // order-independent: each case stands alone
		t.Run(name, func(t *testing.T) {
			var first bytes.Buffer
			if err := EncodeJSON(&first, h); err != nil {
				t.Fatal(err)
			}
			decoded, err := DecodeJSON(bytes.NewReader(first.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(&decoded, h) {
				t.Fatalf("decoded history differs:\n%s\nwant:\n%s", decoded.Text(), h.Text())
			}
			var second bytes.Buffer
			if err := EncodeJSON(&second, &decoded); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(first.Bytes(), second.Bytes()) {
				t.Fatal("re-encoding gives different bytes")
			}
		})
	}
}

// TestJSONFieldNames pins the wire names the simulator writes, so that a
// renamed Go field cannot silently break saved histories.
func TestJSONFieldNames(t *testing.T) {
	const saved = `{"ops":[
 {"client":0,"process":1,"kind":"produce","call":10,"return":20,"outcome":"ok","topic":"t","partition":0,
  "produce":{"value":"a","producer_id":4,"idempotent":true,"acks":-1,"seq":0,"durable":true,"offset":0}},
 {"client":1,"process":0,"kind":"poll","call":30,"return":40,"outcome":"ok","topic":"t","partition":0,
  "poll":{"group":"g","fetch_offset":0,"records":[{"offset":0,"value":"a"}],"reset":true,"isolation":"read_committed","final":true}},
 {"client":1,"process":0,"kind":"commit","call":41,"return":42,"outcome":"indefinite","topic":"t","partition":0,
  "group":{"group":"g","offset":1}}],
 "ends":[{"topic":"t","partition":0,"offset":1}]}`
	h, err := DecodeJSON(strings.NewReader(saved))
	if err != nil {
		t.Fatal(err)
	}
	want := `#0 c0/s1 [10,20] produce t-0 ok "a" pid=4 idem acks=all seq=0 durable @0
#1 c1/s0 [30,40] poll t-0 ok from=0 group=g read_committed reset final [0:"a"]
#2 c1/s0 [41,42] commit t-0 indefinite group=g @1
end t-0 @1
`
	if got := h.Text(); got != want {
		t.Fatalf("text:\n%s\nwant:\n%s", got, want)
	}
}

// TestDecodeRejectsBadInput feeds malformed JSON and invalid histories to
// DecodeJSON and expects a clear error each time, never a panic.
func TestDecodeRejectsBadInput(t *testing.T) {
	for _, tc := range []struct{ name, json, want string }{
		{"syntax", `{"ops":[`, "decode history"},
		{"unknown field", `{"ops":[],"extra":1}`, "unknown field"},
		{"unknown kind", `{"ops":[{"kind":"delete","outcome":"ok","topic":"t","group":{"group":"g"}}]}`, `unknown kind "delete"`},
		{"no payload", `{"ops":[{"kind":"poll","outcome":"ok","topic":"t"}]}`, "exactly one payload"},
		{"return before call", `{"ops":[{"kind":"poll","call":5,"return":4,"outcome":"ok","topic":"t","poll":{}}]}`, "call <= return"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeJSON(strings.NewReader(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestValidateRejectsBrokenContracts breaks one rule of the history format
// per case and expects Validate, and Check, to name it.
func TestValidateRejectsBrokenContracts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		breaks func(b *builder)
		want   string
	}{
		{"bad outcome", func(b *builder) { b.h.Ops[0].Outcome = "maybe" }, `unknown outcome "maybe"`},
		{"empty topic", func(b *builder) { b.h.Ops[0].Topic = "" }, "topic name"},
		{"negative client", func(b *builder) { b.h.Ops[0].Client = -1 }, "client -1"},
		{"bad acks", func(b *builder) { b.h.Ops[0].Produce.Acks = 2 }, "acks 2"},
		{"durable acks=0", func(b *builder) { b.h.Ops[0].Produce.Acks = AcksNone }, "cannot promise durability"},
		{"ack without offset", func(b *builder) { b.h.Ops[0].Produce.Offset = -1 }, "acknowledged produce with offset -1"},
		{"empty value", func(b *builder) { b.h.Ops[0].Produce.Value = "" }, "value of 0 bytes"},
		{"records on failed poll", func(b *builder) { b.h.Ops[3].Outcome = OutcomeFail }, "only an ok poll returns records"},
		{"negative record offset", func(b *builder) { b.h.Ops[3].Poll.Records[0].Offset = -2 }, "negative offset -2"},
		{"bad isolation", func(b *builder) { b.h.Ops[3].Poll.Isolation = "dirty" }, `unknown isolation "dirty"`},
		{"commit without group", func(b *builder) { b.h.Ops[4].Group.Group = "" }, "group name"},
		{"two payloads", func(b *builder) { b.h.Ops[4].Poll = &Poll{} }, "exactly one payload"},
		{"value of two producers", func(b *builder) { b.h.Ops[1].Produce.Value = "a" }, `value "a" in t-0 was already produced by producer 0`},
		{"idempotent resend", func(b *builder) { b.produce(0, 90, 95, OutcomeIndefinite, "a", 0) }, "sends value \"a\" in t-0 twice"},
		{"idempotence flips", func(b *builder) { b.produce(0, 90, 95, OutcomeFail, "z", 0).Idempotent = false }, "producer 0 is idempotent"},
		{"seq reused", func(b *builder) { b.produce(0, 90, 95, OutcomeFail, "z", 0).Seq = 0 }, "reuses seq 0"},
		{"end twice", func(b *builder) { b.end(3) }, "t-0 listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := baseline()
			tc.breaks(b)
			err := b.h.Validate()
			if !errors.Is(err, ErrInvalidHistory) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrInvalidHistory containing %q", err, tc.want)
			}
			r := Check(&b.h, Options{})
			if r.Status != StatusInvalid || !strings.HasPrefix(r.Verdict, "INVALID: ") || r.Err == nil {
				t.Fatalf("Check gave %s %q, want invalid", r.Status, r.Verdict)
			}
		})
	}
}

// TestVisualize writes porcupine's HTML for a partition and checks that it
// holds the operations, and that an unknown partition is an error.
func TestVisualize(t *testing.T) {
	h := baseline().h
	var buf bytes.Buffer
	if err := Visualize(&buf, &h, TopicPartition{Topic: "t"}, Options{}); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	for _, want := range []string{"<html", `produce \"a\" @0`, "op #3"} {
		if !strings.Contains(html, want) {
			t.Errorf("visualization lacks %q", want)
		}
	}
	if err := Visualize(&buf, &h, TopicPartition{Topic: "nope"}, Options{}); err == nil {
		t.Error("visualizing a partition the history lacks succeeded")
	}
}
