package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// fetchWaitMax bounds how long the broker holds an idle fetch.
const fetchWaitMax = 500 * time.Millisecond

// autoCommitInterval is how often a group consume commits what it printed.
const autoCommitInterval = time.Second

// consumeCommand is "kctl consume".
var consumeCommand = command{
	name:     "consume",
	synopsis: "TOPIC [-g group] [-o start|end|OFFSET|-N] [-n count] [-e] [-f format]",
	summary:  "Print a topic's records, one per line.",
	description: "Prints records until interrupted, -n records, or (with -e) the end of every partition.\n" +
		"-o -N starts N records before the end of each partition. Without -g nothing is committed;\n" +
		"with -g the group's committed offsets win over -o, the printed records are committed, and\n" +
		"the group session survives a broker restart. When stderr is a terminal and stdout is not,\n" +
		"a progress line goes to stderr.\n" +
		"Format directives: %t topic, %p partition, %o offset, %k key, %v value, %T timestamp (ms), %%.",
	examples: []string{
		"kctl consume orders -e                      # everything, then exit",
		"kctl consume orders -o -10 -e               # the last 10 records of each partition",
		"kctl consume orders -g billing              # resume where group billing stopped",
		"kctl consume orders -f '%p/%o %k=%v'        # partition, offset, key and value",
	},
	flags: consumeFlags,
}

// consumeOptions are the parsed flags of "kctl consume".
type consumeOptions struct {
	topic       string
	group       string
	start       startSpec
	count       int // 0: no limit
	exitAtEnd   bool
	format      recordFormat
	commitGroup bool
}

// startSpec is a parsed -o: where to start in each partition.
type startSpec struct {
	text     string
	atStart  bool
	atEnd    bool
	exact    int64 // when neither atStart nor atEnd and fromEnd is 0
	fromEnd  int64 // N of "-o -N"
	relative bool
}

func consumeFlags(fs *flagSet) func(*invocation, []string) error {
	group := fs.fs.String("g", "", "consumer group to join (offsets are committed to it)")
	start := fs.fs.String("o", "start", "where to start: start, end, an OFFSET, or -N (N before the end)")
	count := fs.fs.Int("n", 0, "exit after this many records (0: no limit)")
	exitAtEnd := fs.fs.Bool("e", false, "exit once every partition has been read to its end offset at startup")
	format := fs.fs.String("f", "%v", "output format per record (a newline is added unless it ends with \\n)")
	return func(inv *invocation, args []string) error {
		if len(args) != 1 {
			return fs.usageErrorf("consume takes exactly one topic (got %d arguments)", len(args))
		}
		opts := consumeOptions{topic: args[0], group: *group, count: *count, exitAtEnd: *exitAtEnd}
		opts.commitGroup = *group != ""
		var err error
		if opts.start, err = parseStart(*start); err != nil {
			return fs.usageErrorf("-o: %v", err)
		}
		if *count < 0 {
			return fs.usageErrorf("-n %d: give a count of records, or 0 for no limit", *count)
		}
		if opts.format, err = parseFormat(*format); err != nil {
			return fs.usageErrorf("-f: %v", err)
		}
		return consume(inv, opts)
	}
}

func parseStart(text string) (startSpec, error) {
	s := startSpec{text: text}
	switch strings.ToLower(text) {
	case "start", "beginning", "earliest", "oldest":
		s.atStart = true
		return s, nil
	case "end", "latest", "newest":
		s.atEnd = true
		return s, nil
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return s, fmt.Errorf("%q is not start, end, an offset or -N", text)
	}
	if n < 0 {
		s.relative, s.fromEnd = true, -n
		return s, nil
	}
	s.exact = n
	return s, nil
}

// offset is the spec as kgo's start offset.
func (s startSpec) offset() kgo.Offset {
	switch {
	case s.atStart:
		return kgo.NewOffset().AtStart()
	case s.atEnd:
		return kgo.NewOffset().AtEnd()
	case s.relative:
		return kgo.NewOffset().AtEnd().Relative(-s.fromEnd)
	}
	return kgo.NewOffset().At(s.exact)
}

// position is where the spec starts in a partition spanning [low, high),
// bounded to the log as kgo bounds it.
func (s startSpec) position(low, high int64) int64 {
	var p int64
	switch {
	case s.atStart:
		p = low
	case s.atEnd:
		p = high
	case s.relative:
		p = high - s.fromEnd
	default:
		p = s.exact
	}
	return min(max(p, low), high)
}

func consume(inv *invocation, opts consumeOptions) error {
	admin, closeAdmin, err := inv.connectAdmin()
	if err != nil {
		return err
	}
	defer closeAdmin()
	remaining, err := consumeTargets(inv, admin, opts)
	if err != nil {
		return err
	}
	if opts.exitAtEnd && len(remaining) == 0 {
		return nil // every partition is already read to its end
	}
	kopts := []kgo.Opt{
		kgo.ConsumeTopics(opts.topic),
		kgo.ConsumeStartOffset(opts.start.offset()),
		// Data lost below the log start resumes at the log start: never
		// silently skip records that still exist.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// A long poll that waits on an idle partition delays a partition
		// added after it was sent (kgo cannot amend a fetch in flight), so
		// wait no longer than librdkafka's fetch.wait.max.ms default.
		kgo.FetchMaxWait(fetchWaitMax),
	}
	if opts.group != "" {
		// Commit only what was printed: records are marked after they
		// reach stdout, and kgo commits marks periodically and on revoke.
		// A commit every second (kgo's default is 5 s) keeps the records
		// printed twice after a crash or a broker restart to about one
		// second's worth.
		kopts = append(kopts, kgo.ConsumerGroup(opts.group), kgo.AutoCommitMarks(), kgo.AutoCommitInterval(autoCommitInterval))
	}
	client, err := inv.connect(kopts...)
	if err != nil {
		return err
	}
	defer client.Close()
	return consumeLoop(inv, client, opts, remaining)
}

// transientPause is how long the consume loop waits after a poll that
// returned only transient errors, so that a client retrying in the
// background is not polled in a busy loop.
const transientPause = 100 * time.Millisecond

// consumeLoop prints records until -n, the end targets of -e, or an
// interruption; with a group it commits exactly what it printed. Transient
// errors (the broker went away, the group is rejoining) are reported once
// and waited out: kgo reconnects and rejoins on its own.
func consumeLoop(inv *invocation, client *kgo.Client, opts consumeOptions, remaining map[int32]int64) error {
	out := bufio.NewWriter(inv.stdout)
	var line []byte
	printed, troubled := 0, false
	started := time.Now()
	var shown atomic.Int64
	progressInv := *inv
	progressInv.terminal = inv.terminal && !inv.stdoutTerminal
	status := startProgress(&progressInv, time.Second, func() string {
		return fmt.Sprintf("consumed %d records, %s", shown.Load(), time.Since(started).Round(time.Second))
	})
	defer status.end()
	for {
		want := -1
		if opts.count > 0 {
			want = opts.count - printed
		}
		fetches := client.PollRecords(inv.ctx, want)
		if inv.ctx.Err() != nil || fetches.IsClientClosed() {
			return errors.Join(out.Flush(), commitPrinted(inv, client, opts))
		}
		fatal, transient := fetchProblems(fetches)
		if fatal != nil {
			return errors.Join(fatal, out.Flush())
		}
		if transient != nil && !troubled {
			troubled = true
			inv.reportf("consume %s: %s; retrying until it is back (Ctrl-C to stop)", opts.topic, transient)
		}
		if transient != nil && fetches.NumRecords() == 0 {
			pause(inv.ctx, transientPause)
			continue
		}
		if troubled && fetches.NumRecords() > 0 {
			troubled = false
			inv.reportf("consume %s: receiving records again", opts.topic)
		}
		for _, r := range fetches.Records() {
			line = opts.format.append(line[:0], r)
			if _, err := out.Write(line); err != nil {
				return fmt.Errorf("writing stdout: %w", err)
			}
			printed++
			if end, ok := remaining[r.Partition]; ok && r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
		}
		shown.Store(int64(printed))
		if err := out.Flush(); err != nil {
			return fmt.Errorf("writing stdout: %w", err)
		}
		if opts.commitGroup {
			client.MarkCommitRecords(fetches.Records()...)
		}
		if (opts.count > 0 && printed >= opts.count) || (opts.exitAtEnd && len(remaining) == 0) {
			return commitPrinted(inv, client, opts)
		}
	}
}

// pause waits for d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
}

// fetchError is the first fatal fetch error. Transient errors are kgo's to
// retry; they are not returned.
func fetchError(fetches kgo.Fetches) error {
	fatal, _ := fetchProblems(fetches)
	return fatal
}

// fetchProblems is the first fatal and the first transient error of a
// poll, each as one line.
func fetchProblems(fetches kgo.Fetches) (fatal, transient error) {
	fetches.EachError(func(topic string, partition int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		where := fmt.Sprintf("consume %s partition %d", topic, partition)
		if topic == "" { // a group error, not one partition's
			where = "consumer group"
		}
		described := fmt.Errorf("%s: %s", where, kafkaError(err, ""))
		switch {
		case !transientError(err):
			if fatal == nil {
				fatal = described
			}
		case transient == nil:
			transient = described
		}
	})
	return fatal, transient
}

// transientError reports whether err is one that kgo retries on its own:
// a lost or refused connection, a retriable Kafka error, or a group session
// that failed for such a reason (kgo rejoins). Errors that no retry can fix
// (authorization, an invalid group) end the command.
func transientError(err error) bool {
	var session *kgo.ErrGroupSession
	if errors.As(err, &session) {
		var ke *kerr.Error
		if errors.As(session.Err, &ke) {
			return !groupFatal[ke.Code]
		}
		return true
	}
	var ke *kerr.Error
	var opErr *net.OpError
	switch {
	case errors.As(err, &ke):
		return ke.Retriable
	case kgo.IsRetryableBrokerErr(err), errors.As(err, &opErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		return true
	}
	return false
}

// groupFatal are the group errors that rejoining cannot fix, by code.
var groupFatal = map[int16]bool{
	kerr.GroupAuthorizationFailed.Code:  true,
	kerr.TopicAuthorizationFailed.Code:  true,
	kerr.InvalidGroupID.Code:            true,
	kerr.InconsistentGroupProtocol.Code: true,
	kerr.GroupMaxSizeReached.Code:       true,
}

// commitPrinted commits the offsets of the printed records (marked in the
// loop; PollRecords is bounded by -n, so nothing unprinted is marked) when
// consuming in a group.
func commitPrinted(inv *invocation, client *kgo.Client, opts consumeOptions) error {
	if !opts.commitGroup {
		return nil
	}
	// An interrupted consume still commits what it printed, so the commit
	// gets its own deadline rather than the (cancelled) command context.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(inv.ctx), inv.global.timeout)
	defer cancel()
	if err := client.CommitMarkedOffsets(ctx); err != nil {
		return fmt.Errorf("commit offsets of group %s: %s", opts.group, kafkaError(err, ""))
	}
	return nil
}

// consumeTargets checks that the topic exists and, for -e, returns the end
// offset still to reach in each partition that has something to read.
func consumeTargets(inv *invocation, admin *kadm.Client, opts consumeOptions) (map[int32]int64, error) {
	ctx, cancel := inv.requestContext()
	defer cancel()
	topics, err := admin.ListTopics(ctx, opts.topic)
	if err != nil {
		return nil, requestError("describe topic "+opts.topic, err)
	}
	if d := topics[opts.topic]; d.Err != nil || !topics.Has(opts.topic) {
		if d.Err == nil {
			d.Err = kerr.UnknownTopicOrPartition
		}
		return nil, fmt.Errorf("consume %s: %s", opts.topic, kafkaError(d.Err, ""))
	}
	if !opts.exitAtEnd {
		return nil, nil
	}
	starts, err := admin.ListStartOffsets(ctx, opts.topic)
	if err != nil {
		return nil, requestError("list start offsets of "+opts.topic, err)
	}
	ends, err := admin.ListEndOffsets(ctx, opts.topic)
	if err != nil {
		return nil, requestError("list end offsets of "+opts.topic, err)
	}
	var committed kadm.OffsetResponses
	if opts.group != "" {
		if committed, err = admin.FetchOffsets(ctx, opts.group); err != nil {
			return nil, requestError("fetch offsets of group "+opts.group, err)
		}
	}
	return remainingTargets(opts, starts, ends, committed)
}

// remainingTargets pairs each partition's starting position with its end.
func remainingTargets(opts consumeOptions, starts, ends kadm.ListedOffsets, committed kadm.OffsetResponses) (map[int32]int64, error) {
	remaining := make(map[int32]int64)
	for partition, end := range ends[opts.topic] { // order-independent: fills a map
		start, ok := starts.Lookup(opts.topic, partition)
		if end.Err != nil || !ok || start.Err != nil {
			return nil, fmt.Errorf("list offsets of %s partition %d: %s", opts.topic, partition,
				kafkaError(errors.Join(end.Err, start.Err, missingIf(!ok)), ""))
		}
		position := opts.start.position(start.Offset, end.Offset)
		if c, ok := committed.Lookup(opts.topic, partition); ok && c.Err == nil && c.At >= 0 {
			position = c.At
		}
		if position < end.Offset {
			remaining[partition] = end.Offset
		}
	}
	return remaining, nil
}

func missingIf(missing bool) error {
	if missing {
		return errors.New("no start offset listed")
	}
	return nil
}
