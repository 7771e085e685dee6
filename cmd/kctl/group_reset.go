package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// resetTopicsMax bounds the --topic flags of one reset-offsets command.
const resetTopicsMax = 100

// resetOffsetsCommand is "kctl group reset-offsets".
var resetOffsetsCommand = command{
	name: "reset-offsets",
	synopsis: "GROUP --topic TOPIC[:PARTITIONS]... (--to-earliest | --to-latest | --to-offset N |\n" +
		"       --to-datetime RFC3339 | --shift-by N) [--execute]",
	summary: "Move a group's committed offsets back or forward to replay or skip records.",
	description: "Computes new committed offsets for the group on the given topics (all partitions, or a\n" +
		"comma-separated list after a colon: orders:0,2) and prints the plan: per partition the current\n" +
		"and the new offset. Nothing changes without --execute, which commits the new offsets.\n" +
		"As Kafka's kafka-consumer-groups.sh, the reset is refused while the group has live members\n" +
		"(its state is not Empty or Dead): stop its consumers first. New offsets are kept within each\n" +
		"partition's log start and end. --to-datetime picks the first record at or after the time\n" +
		"(ListOffsets by timestamp), or the end when there is none; --shift-by moves the committed\n" +
		"offset by N (negative to replay), so every partition must have one.",
	examples: []string{
		"kctl group reset-offsets billing --topic orders --to-earliest              # plan a full replay",
		"kctl group reset-offsets billing --topic orders --to-earliest --execute    # and do it",
		"kctl group reset-offsets billing --topic orders:0,1 --shift-by -100 --execute",
		"kctl group reset-offsets billing --topic orders --to-datetime 2026-12-06T03:00:00Z --execute",
	},
	flags: resetOffsetsFlags,
}

// resetMode is how reset-offsets computes a partition's new offset.
type resetMode int

const (
	resetToEarliest resetMode = iota + 1
	resetToLatest
	resetToOffset
	resetToDatetime
	resetShiftBy
)

// resetOptions are the parsed flags of "kctl group reset-offsets".
type resetOptions struct {
	group   string
	topics  []topicSelection
	mode    resetMode
	offset  int64 // --to-offset N or --shift-by N
	timeMs  int64 // --to-datetime, Unix milliseconds
	execute bool
}

// topicSelection is one --topic: a topic and its partitions (nil: all).
type topicSelection struct {
	topic      string
	partitions []int32
}

// topicSelections collects repeated --topic flags.
type topicSelections []topicSelection

func (s *topicSelections) String() string { return "" }

func (s *topicSelections) Set(value string) error {
	if len(*s) >= resetTopicsMax {
		return fmt.Errorf("more than %d topics", resetTopicsMax)
	}
	selection, err := parseTopicSelection(value)
	if err != nil {
		return err
	}
	*s = append(*s, selection)
	return nil
}

// parseTopicSelection parses TOPIC or TOPIC:P[,P...].
func parseTopicSelection(value string) (topicSelection, error) {
	topic, list, hasList := strings.Cut(value, ":")
	if topic == "" {
		return topicSelection{}, fmt.Errorf("%q names no topic", value)
	}
	selection := topicSelection{topic: topic}
	if !hasList {
		return selection, nil
	}
	seen := map[int32]bool{}
	for _, text := range strings.Split(list, ",") {
		p, err := strconv.ParseInt(strings.TrimSpace(text), 10, 32)
		if err != nil || p < 0 {
			return topicSelection{}, fmt.Errorf("%q: %q is not a partition number", value, text)
		}
		if !seen[int32(p)] {
			seen[int32(p)] = true
			selection.partitions = append(selection.partitions, int32(p))
		}
	}
	sort.Slice(selection.partitions, func(i, j int) bool { return selection.partitions[i] < selection.partitions[j] })
	return selection, nil
}

func resetOffsetsFlags(fs *flagSet) func(*invocation, []string) error {
	var topics topicSelections
	fs.fs.Var(&topics, "topic", "topic to reset, with optional partitions: orders or orders:0,2 (repeatable)")
	earliest := fs.fs.Bool("to-earliest", false, "reset to each partition's log start offset")
	latest := fs.fs.Bool("to-latest", false, "reset to each partition's end offset (skip everything)")
	toOffset := fs.fs.String("to-offset", "", "reset to this offset")
	toDatetime := fs.fs.String("to-datetime", "", "reset to the first record at or after this RFC 3339 time")
	shiftBy := fs.fs.String("shift-by", "", "move the committed offset by N (negative replays)")
	execute := fs.fs.Bool("execute", false, "commit the new offsets (without it, only print the plan)")
	return func(inv *invocation, args []string) error {
		if len(args) != 1 {
			return fs.usageErrorf("reset-offsets takes exactly one group (got %d arguments)", len(args))
		}
		if len(topics) == 0 {
			return fs.usageErrorf("no --topic given")
		}
		opts := resetOptions{group: args[0], topics: topics, execute: *execute}
		if err := opts.parseMode(*earliest, *latest, *toOffset, *toDatetime, *shiftBy); err != nil {
			return fs.usageErrorf("%v", err)
		}
		return resetOffsets(inv, opts)
	}
}

// parseMode checks that exactly one mode flag was given and parses its value.
func (o *resetOptions) parseMode(earliest, latest bool, toOffset, toDatetime, shiftBy string) error {
	var given []string
	if earliest {
		o.mode = resetToEarliest
		given = append(given, "--to-earliest")
	}
	if latest {
		o.mode = resetToLatest
		given = append(given, "--to-latest")
	}
	var err error
	if toOffset != "" {
		o.mode = resetToOffset
		given = append(given, "--to-offset")
		if o.offset, err = strconv.ParseInt(toOffset, 10, 64); err != nil || o.offset < 0 {
			return fmt.Errorf("--to-offset %q: give an offset, 0 or more", toOffset)
		}
	}
	if toDatetime != "" {
		o.mode = resetToDatetime
		given = append(given, "--to-datetime")
		at, err := time.Parse(time.RFC3339Nano, toDatetime)
		if err != nil {
			return fmt.Errorf("--to-datetime %q: give an RFC 3339 time such as 2026-12-06T03:00:00Z", toDatetime)
		}
		o.timeMs = at.UnixMilli()
		if o.timeMs < 0 {
			return fmt.Errorf("--to-datetime %q is before 1970", toDatetime)
		}
	}
	if shiftBy != "" {
		o.mode = resetShiftBy
		given = append(given, "--shift-by")
		if o.offset, err = strconv.ParseInt(shiftBy, 10, 64); err != nil {
			return fmt.Errorf("--shift-by %q: give a whole number of records", shiftBy)
		}
	}
	switch len(given) {
	case 0:
		return fmt.Errorf("give one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by")
	case 1:
		return nil
	}
	return fmt.Errorf("%s: give only one", strings.Join(given, " and "))
}

// resetPlanRow is one partition's current and new committed offset.
type resetPlanRow struct {
	topic     string
	partition int32
	current   int64 // -1: nothing committed
	target    int64
}

func resetOffsets(inv *invocation, opts resetOptions) error {
	return inv.withAdmin(func(ctx context.Context, admin *kadm.Client) error {
		if err := checkGroupInactive(ctx, admin, opts.group); err != nil {
			return err
		}
		plan, err := planReset(ctx, admin, opts)
		if err != nil {
			return err
		}
		table := newTable(inv.stdout, "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET")
		for _, row := range plan {
			table.row(row.topic, row.partition, committedCell(row.current), row.target)
		}
		if err := table.flush(); err != nil {
			return err
		}
		if !opts.execute {
			fmt.Fprintf(inv.stderr, "dry run: group %s is unchanged; add --execute to commit these offsets\n", opts.group)
			return nil
		}
		if err := commitPlan(ctx, admin, opts.group, plan); err != nil {
			return err
		}
		fmt.Fprintf(inv.stderr, "committed new offsets of group %s for %d %s\n", opts.group, len(plan), plural(len(plan), "partition"))
		return nil
	})
}

func committedCell(offset int64) string {
	if offset < 0 {
		return "-"
	}
	return strconv.FormatInt(offset, 10)
}

// checkGroupInactive refuses a group with live members: they would
// overwrite the reset with their next commit, as Kafka's tool warns.
func checkGroupInactive(ctx context.Context, admin *kadm.Client, group string) error {
	described, err := admin.DescribeGroups(ctx, group)
	if err != nil {
		return requestError("describe group "+group, err)
	}
	d, ok := described[group]
	switch {
	case !ok:
		return fmt.Errorf("describe group %s: the broker did not describe it", group)
	case errors.Is(d.Err, kerr.GroupIDNotFound):
		return nil // a group not created yet has no members; the commit creates it, as in Kafka
	case d.Err != nil:
		return fmt.Errorf("describe group %s: %s", group, kafkaError(d.Err, d.ErrMessage))
	case d.State == "Empty" || d.State == "Dead" || d.State == "":
		return nil
	}
	return fmt.Errorf("group %s has %d live %s (state %s); offsets can only be reset while the group is inactive: stop its consumers first",
		group, len(d.Members), plural(len(d.Members), "member"), d.State)
}

// planReset computes the new offset of every selected partition.
func planReset(ctx context.Context, admin *kadm.Client, opts resetOptions) ([]resetPlanRow, error) {
	names := make([]string, 0, len(opts.topics))
	for _, s := range opts.topics {
		names = append(names, s.topic)
	}
	partitions, err := selectedPartitions(ctx, admin, opts.topics)
	if err != nil {
		return nil, err
	}
	committed, err := admin.FetchOffsets(ctx, opts.group)
	if err != nil {
		return nil, requestError("fetch offsets of group "+opts.group, err)
	}
	starts, err := admin.ListStartOffsets(ctx, names...)
	if err != nil {
		return nil, requestError("list start offsets", err)
	}
	ends, err := admin.ListEndOffsets(ctx, names...)
	if err != nil {
		return nil, requestError("list end offsets", err)
	}
	var byTime kadm.ListedOffsets
	if opts.mode == resetToDatetime {
		if byTime, err = admin.ListOffsetsAfterMilli(ctx, opts.timeMs, names...); err != nil {
			return nil, requestError("list offsets by time", err)
		}
	}
	plan := make([]resetPlanRow, 0, len(partitions))
	for _, tp := range partitions {
		row := resetPlanRow{topic: tp.topic, partition: tp.partition, current: -1}
		if c, ok := committed.Lookup(tp.topic, tp.partition); ok && c.Err == nil && c.At >= 0 {
			row.current = c.At
		}
		bounds, err := partitionBounds(starts, ends, tp)
		if err != nil {
			return nil, err
		}
		if row.target, err = opts.target(row.current, bounds, byTime, tp); err != nil {
			return nil, err
		}
		plan = append(plan, row)
	}
	return plan, nil
}

// topicPartition names one partition.
type topicPartition struct {
	topic     string
	partition int32
}

// selectedPartitions expands the --topic selections into partitions in
// topic and partition order, checking that each exists.
func selectedPartitions(ctx context.Context, admin *kadm.Client, selections []topicSelection) ([]topicPartition, error) {
	names := make([]string, 0, len(selections))
	for _, s := range selections {
		names = append(names, s.topic)
	}
	details, err := admin.ListTopics(ctx, names...)
	if err != nil {
		return nil, requestError("describe topics", err)
	}
	seen := map[topicPartition]bool{}
	var out []topicPartition
	for _, s := range selections {
		d, ok := details[s.topic]
		if !ok || d.Err != nil {
			cause := "UNKNOWN_TOPIC_OR_PARTITION: the topic does not exist"
			if ok {
				cause = kafkaError(d.Err, "")
			}
			return nil, fmt.Errorf("reset-offsets --topic %s: %s", s.topic, cause)
		}
		wanted := s.partitions
		if wanted == nil {
			wanted = d.Partitions.Numbers()
		}
		for _, p := range wanted {
			if _, exists := d.Partitions[p]; !exists {
				return nil, fmt.Errorf("reset-offsets --topic %s: partition %d does not exist (the topic has %d)", s.topic, p, len(d.Partitions))
			}
			tp := topicPartition{s.topic, p}
			if !seen[tp] {
				seen[tp] = true
				out = append(out, tp)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].topic != out[j].topic {
			return out[i].topic < out[j].topic
		}
		return out[i].partition < out[j].partition
	})
	return out, nil
}

// logBounds are a partition's log start and end offsets.
type logBounds struct{ start, end int64 }

func partitionBounds(starts, ends kadm.ListedOffsets, tp topicPartition) (logBounds, error) {
	start, okStart := starts.Lookup(tp.topic, tp.partition)
	end, okEnd := ends.Lookup(tp.topic, tp.partition)
	switch {
	case !okStart || !okEnd:
		return logBounds{}, fmt.Errorf("list offsets of %s partition %d: the broker did not answer for it", tp.topic, tp.partition)
	case start.Err != nil || end.Err != nil:
		err := start.Err
		if err == nil {
			err = end.Err
		}
		return logBounds{}, fmt.Errorf("list offsets of %s partition %d: %s", tp.topic, tp.partition, kafkaError(err, ""))
	}
	return logBounds{start: start.Offset, end: end.Offset}, nil
}

// target is a partition's new offset under the chosen mode, kept within
// the log as Kafka's tool keeps it.
func (o resetOptions) target(current int64, bounds logBounds, byTime kadm.ListedOffsets, tp topicPartition) (int64, error) {
	var offset int64
	switch o.mode {
	case resetToEarliest:
		offset = bounds.start
	case resetToLatest:
		offset = bounds.end
	case resetToOffset:
		offset = o.offset
	case resetToDatetime:
		listed, ok := byTime.Lookup(tp.topic, tp.partition)
		if !ok || listed.Err != nil {
			err := listed.Err
			if err == nil {
				return 0, fmt.Errorf("list offsets by time of %s partition %d: the broker did not answer for it", tp.topic, tp.partition)
			}
			return 0, fmt.Errorf("list offsets by time of %s partition %d: %s", tp.topic, tp.partition, kafkaError(err, ""))
		}
		offset = listed.Offset
		if offset < 0 { // no record at or after the time
			offset = bounds.end
		}
	case resetShiftBy:
		if current < 0 {
			return 0, fmt.Errorf("--shift-by: group %s has no committed offset for %s partition %d to shift; use --to-offset, --to-earliest or --to-latest",
				o.group, tp.topic, tp.partition)
		}
		offset = current + o.offset
	default:
		panic(fmt.Sprintf("reset mode %d survived parseMode", o.mode))
	}
	return min(max(offset, bounds.start), bounds.end), nil
}

// commitPlan commits the new offsets and reports every partition the
// broker refused.
func commitPlan(ctx context.Context, admin *kadm.Client, group string, plan []resetPlanRow) error {
	var offsets kadm.Offsets
	for _, row := range plan {
		offsets.Add(kadm.Offset{Topic: row.topic, Partition: row.partition, At: row.target, LeaderEpoch: -1})
	}
	committed, err := admin.CommitOffsets(ctx, group, offsets)
	if err != nil {
		return requestError("commit offsets of group "+group, err)
	}
	for _, row := range plan {
		r, ok := committed.Lookup(row.topic, row.partition)
		switch {
		case !ok:
			return fmt.Errorf("commit offsets of group %s: no answer for %s partition %d", group, row.topic, row.partition)
		case r.Err != nil:
			return fmt.Errorf("commit offsets of group %s: %s partition %d: %s", group, row.topic, row.partition, kafkaError(r.Err, ""))
		}
	}
	return nil
}
