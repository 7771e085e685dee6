package main

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFormat checks the -f directives and escapes on one known record, the
// newline rule (added unless the format ends with one), and that unknown
// directives, unknown escapes, a trailing lone % and an oversized format
// are errors.
func TestFormat(t *testing.T) {
	record := &kgo.Record{
		Topic: "t", Partition: 3, Offset: 42, Key: []byte("k"), Value: []byte("v"),
		Timestamp: time.UnixMilli(1700000000123),
	}
	good := []struct{ format, want string }{
		{"%v", "v\n"},
		{"%t %p %o %k %v %T", "t 3 42 k v 1700000000123\n"},
		{`%k\t%v\n`, "k\tv\n"},
		{`100%% \\ %v`, `100% \ v` + "\n"},
		{"", "\n"},
		{`%v\n\n`, "v\n\n"},
	}
	for _, g := range good {
		f, err := parseFormat(g.format)
		if err != nil {
			t.Fatalf("parseFormat(%q): %v", g.format, err)
		}
		if got := string(f.append(nil, record)); got != g.want {
			t.Errorf("format %q: got %q, want %q", g.format, got, g.want)
		}
	}
	bad := []string{"%x", `\q`, "%", `\`, "%v %", strings.Repeat("a", formatBytesMax+1)}
	for _, b := range bad {
		if _, err := parseFormat(b); err == nil {
			t.Errorf("parseFormat(%.20q) accepted a bad format", b)
		}
	}
}

// TestStartPosition checks where each -o spelling starts in a partition
// spanning offsets [10, 20), including the clamping of offsets outside the
// log to its nearest boundary (as kgo does), which -e relies on.
func TestStartPosition(t *testing.T) {
	cases := []struct {
		text string
		want int64
	}{
		{"start", 10}, {"beginning", 10}, {"end", 20}, {"latest", 20},
		{"15", 15}, {"3", 10}, {"25", 20}, {"-4", 16}, {"-30", 10}, {"0", 10},
	}
	for _, c := range cases {
		s, err := parseStart(c.text)
		if err != nil {
			t.Fatalf("parseStart(%q): %v", c.text, err)
		}
		if got := s.position(10, 20); got != c.want {
			t.Errorf("-o %s: position %d, want %d", c.text, got, c.want)
		}
	}
	for _, bad := range []string{"", "soon", "1.5", "0x10"} {
		if _, err := parseStart(bad); err == nil {
			t.Errorf("parseStart(%q) accepted a bad offset", bad)
		}
	}
}
