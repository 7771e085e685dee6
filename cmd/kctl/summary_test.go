package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestFailureSummary adds failures with a few causes and checks that the
// summary is one line per cause, most frequent first, with the first item
// of each, and that causes beyond failureCausesMax share one closing line.
func TestFailureSummary(t *testing.T) {
	s := newFailureSummary()
	for item := 1; item <= 5000; item++ {
		s.add(item, "RECORD_LIST_TOO_LARGE (code 18): too large")
	}
	s.add(7, "TIMED_OUT")
	s.add(3, "TIMED_OUT")
	var out strings.Builder
	s.print(&out, "produce t", "line")
	want := "kctl: produce t: 5000 records failed (first: line 1): RECORD_LIST_TOO_LARGE (code 18): too large\n" +
		"kctl: produce t: 2 records failed (first: line 3): TIMED_OUT\n"
	if out.String() != want || s.failed() != 5002 {
		t.Fatalf("summary %q (failed %d), want %q", out.String(), s.failed(), want)
	}

	many := newFailureSummary()
	for cause := range failureCausesMax + 3 {
		many.add(cause+1, fmt.Sprintf("cause %02d", cause))
	}
	out.Reset()
	many.print(&out, "produce t", "line")
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != failureCausesMax+1 || lines[failureCausesMax] != "kctl: produce t: 3 more records failed with 3 other causes" {
		t.Fatalf("capped summary:\n%s", out.String())
	}
}

// TestProgressOnlyOnATerminal checks that a progress line is drawn (and
// erased at the end) when stderr is a terminal, and that nothing at all is
// written otherwise.
func TestProgressOnlyOnATerminal(t *testing.T) {
	for _, terminal := range []bool{false, true} {
		var stderr syncBuffer
		inv := newInvocation(context.Background(), strings.NewReader(""), &strings.Builder{}, &stderr)
		inv.terminal = terminal
		p := startProgress(inv, time.Millisecond, func() string { return "42 records" })
		if terminal {
			deadline := time.Now().Add(hangGuard)
			for !strings.Contains(stderr.String(), "42 records") && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		} else {
			time.Sleep(20 * time.Millisecond) // many intervals: nothing may appear
		}
		p.end()
		p.end() // a second end is harmless
		got := stderr.String()
		switch {
		case !terminal && got != "":
			t.Fatalf("not a terminal, yet progress wrote %q", got)
		case terminal && (!strings.HasPrefix(got, "\r\033[K42 records") || !strings.HasSuffix(got, "\r\033[K")):
			t.Fatalf("on a terminal, progress wrote %q", got)
		}
	}
}
