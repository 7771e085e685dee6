package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// failureCausesMax bounds the distinct causes a failure summary lists; the
// rest are counted in one closing line.
const failureCausesMax = 10

// failureCount is how many items failed with one cause, and the first.
type failureCount struct {
	cause string
	count int
	first int // the first item (input line, record number) that failed so
}

// failureSummary groups failures by cause, so that 5,000 records failing
// for one reason are one line, not 5,000. Promises run on kgo's goroutines,
// hence the lock.
type failureSummary struct {
	mu      sync.Mutex
	byCause map[string]*failureCount
	total   int
}

func newFailureSummary() *failureSummary {
	return &failureSummary{byCause: map[string]*failureCount{}}
}

// add counts one failed item.
func (s *failureSummary) add(item int, cause string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total++
	c, ok := s.byCause[cause]
	if !ok {
		c = &failureCount{cause: cause, first: item}
		s.byCause[cause] = c
	}
	c.count++
	c.first = min(c.first, item)
}

// failed is the number of failed items.
func (s *failureSummary) failed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// print writes one line per cause, most frequent first: "kctl: WHAT: 5000
// records failed (first: line 1): CAUSE".
func (s *failureSummary) print(w io.Writer, what, itemName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	causes := make([]*failureCount, 0, len(s.byCause))
	for _, c := range s.byCause { // order-independent: sorted below
		causes = append(causes, c)
	}
	sort.Slice(causes, func(i, j int) bool {
		if causes[i].count != causes[j].count {
			return causes[i].count > causes[j].count
		}
		return causes[i].first < causes[j].first
	})
	for i, c := range causes {
		if i == failureCausesMax {
			rest := 0
			for _, r := range causes[i:] {
				rest += r.count
			}
			fmt.Fprintf(w, "kctl: %s: %d more %s failed with %d other causes\n", what, rest, plural(rest, "record"), len(causes)-i)
			return
		}
		fmt.Fprintf(w, "kctl: %s: %d %s failed (first: %s %d): %s\n", what, c.count, plural(c.count, "record"), itemName, c.first, oneLine(c.cause))
	}
}

// deliveryCause is the cause of one failed record in words. A timeout
// names the last error the broker answered with, if any, because kgo's
// timeout error hides it (a full disk is otherwise only "timed out").
func deliveryCause(err error, seen *produceErrorSeen, timeout time.Duration) string {
	if !errors.Is(err, kgo.ErrRecordTimeout) {
		return kafkaError(err, "")
	}
	text := fmt.Sprintf("not delivered within %v (--timeout)", timeout)
	if last := seen.last(); last != "" {
		return text + "; the broker's last error: " + last
	}
	return text + "; the broker gave no error (unreachable or slow?)"
}

// progress rewrites one status line on stderr every interval while a long
// run goes on; it prints nothing unless stderr is a terminal, where a line
// that rewrites itself is welcome (in a pipe or a log file it is noise).
type progress struct {
	stop chan struct{}
	done chan struct{}
}

// startProgress calls status every interval and shows its text; stop ends
// it and clears the line.
func startProgress(inv *invocation, interval time.Duration, status func() string) *progress {
	p := &progress{stop: make(chan struct{}), done: make(chan struct{})}
	if !inv.terminal {
		close(p.done)
		return p
	}
	go func() {
		defer close(p.done)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-p.stop:
				fmt.Fprint(inv.stderr, "\r\033[K")
				return
			case <-ticker.C:
				fmt.Fprintf(inv.stderr, "\r\033[K%s", status())
			}
		}
	}()
	return p
}

// end stops the progress line; it may be called more than once.
func (p *progress) end() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}
