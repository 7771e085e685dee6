package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Bounds on what one command line may ask for, so that a typo cannot send
// an absurd request; the broker enforces its own, tighter limits.
const (
	topicsPerCommandMax  = 1000
	configsPerCommandMax = 100
)

// topicCommands are the subcommands of "kctl topic".
var topicCommands = []command{
	{
		name:     "create",
		synopsis: "NAME... [-p partitions] [-r replication-factor] [-c key=value ...]",
		summary:  "Create topics.",
		description: "Creates each named topic. -p and -r default to -1, which leaves the partition count and\n" +
			"replication factor to the broker (num.partitions, default.replication.factor). -c sets a\n" +
			"topic config and may be repeated.",
		examples: []string{
			"kctl topic create orders -p 3                      # 3 partitions, broker's replication factor",
			"kctl topic create audit -c retention.ms=86400000   # keep records for one day",
		},
		flags: topicCreateFlags,
	},
	{
		name:        "list",
		synopsis:    "[--internal]",
		summary:     "List topics with their partition counts and replication factors.",
		description: "Lists every topic, sorted by name. --internal includes __consumer_offsets.",
		examples:    []string{"kctl topic list", "kctl topic list --internal"},
		flags:       topicListFlags,
	},
	{
		name:     "describe",
		synopsis: "NAME...",
		summary:  "Show a topic's non-default configs and, per partition, leader, replicas, ISR and offsets.",
		description: "Shows the topic's id, its settings that are not at their defaults, and one row per\n" +
			"partition with its leader, leader epoch, replicas, in-sync replicas, log start offset and\n" +
			"high watermark.",
		examples: []string{"kctl topic describe orders", "kctl topic describe orders audit"},
		flags:    topicDescribeFlags,
	},
	{
		name:     "config",
		synopsis: "NAME [--set key=value ...] [--delete key ...]",
		summary:  "Show a topic's settings, or change them with --set and --delete.",
		description: "Without flags, prints every setting of the topic with its value and source (DescribeConfigs).\n" +
			"--set and --delete change settings in one IncrementalAlterConfigs request: --set overrides a\n" +
			"setting for this topic, --delete removes the override so the broker default applies again.\n" +
			"The settings after the change are printed.",
		examples: []string{
			"kctl topic config orders                               # every setting and its source",
			"kctl topic config orders --set retention.ms=3600000    # keep records for one hour",
			"kctl topic config orders --delete retention.ms         # back to the broker default",
		},
		flags: topicConfigFlags,
	},
	{
		name:     "delete",
		synopsis: "NAME...",
		summary:  "Delete topics and their data.",
		description: "Deletes each named topic with all its records. Each failure is its own line on stderr;\n" +
			"the topics deleted are still reported on stdout.",
		examples: []string{"kctl topic delete orders"},
		flags:    topicDeleteFlags,
	},
	{
		name:        "add-partitions",
		synopsis:    "NAME... -n COUNT",
		summary:     "Add COUNT partitions to each topic.",
		description: "Adds -n partitions to each topic; -n is the number to add, not the new total.",
		examples:    []string{"kctl topic add-partitions orders -n 2"},
		flags:       topicAddPartitionsFlags,
	},
}

// checkNames validates a list of topic or group names from the command line.
func checkNames(fs *flagSet, kind string, names []string) error {
	if len(names) == 0 {
		return fs.usageErrorf("no %s name given", kind)
	}
	if len(names) > topicsPerCommandMax {
		return fs.usageErrorf("%d %s names; at most %d per command", len(names), kind, topicsPerCommandMax)
	}
	for _, name := range names {
		if name == "" {
			return fs.usageErrorf("empty %s name", kind)
		}
	}
	return nil
}

// configFlag collects repeated -c key=value flags.
type configFlag map[string]*string

func (c configFlag) String() string { return "" }

func (c configFlag) Set(value string) error {
	key, v, ok := strings.Cut(value, "=")
	if !ok || strings.TrimSpace(key) == "" {
		return fmt.Errorf("%q is not key=value", value)
	}
	if len(c) >= configsPerCommandMax {
		return fmt.Errorf("more than %d configs", configsPerCommandMax)
	}
	c[strings.TrimSpace(key)] = &v
	return nil
}

func topicCreateFlags(fs *flagSet) func(*invocation, []string) error {
	partitions := fs.fs.Int("p", -1, "partitions per topic (-1: the broker's num.partitions)")
	factor := fs.fs.Int("r", -1, "replication factor (-1: the broker's default.replication.factor)")
	configs := configFlag{}
	fs.fs.Var(configs, "c", "topic config key=value (repeatable), e.g. -c retention.ms=60000")
	return func(inv *invocation, names []string) error {
		if err := checkNames(fs, "topic", names); err != nil {
			return err
		}
		if *partitions == 0 || *partitions < -1 || *partitions > 1<<31-1 {
			return fs.usageErrorf("-p %d: give a positive partition count or -1", *partitions)
		}
		if *factor == 0 || *factor < -1 || *factor > 1<<15-1 {
			return fs.usageErrorf("-r %d: give a positive replication factor or -1", *factor)
		}
		return topicCreate(inv, names, int32(*partitions), int16(*factor), configs)
	}
}

func topicCreate(inv *invocation, names []string, partitions int32, factor int16, configs configFlag) error {
	return inv.withAdmin(func(ctx context.Context, admin *kadm.Client) error {
		created, err := admin.CreateTopics(ctx, partitions, factor, configs, names...)
		if err != nil {
			return requestError("create topics", err)
		}
		failed := false
		for _, name := range names {
			r, ok := created[name]
			switch {
			case !ok:
				inv.reportf("topic create %s: the broker did not answer for this topic", name)
				failed = true
			case errors.Is(r.Err, kerr.RequestTimedOut):
				// A large creation goes on after the request's timeout, a
				// chunk of partitions per broker loop turn: wait for it.
				if err := awaitTopic(inv.ctx, admin, name, partitions); err != nil {
					inv.reportf("topic create %s: %s, and it did not appear: %v", name, kafkaError(r.Err, r.ErrMessage), err)
					failed = true
					continue
				}
				fmt.Fprintf(inv.stdout, "created topic %s (it took longer than the request timeout)\n", name)
			case r.Err != nil:
				inv.reportf("topic create %s: %s", name, kafkaError(r.Err, r.ErrMessage))
				failed = true
			default:
				fmt.Fprintf(inv.stdout, "created topic %s: %d %s, replication factor %d, id %s\n",
					name, r.NumPartitions, plural(int(r.NumPartitions), "partition"), r.ReplicationFactor, topicIDText(r.ID))
			}
		}
		if failed {
			return errReported
		}
		return nil
	})
}

// awaitTopic polls the broker until topic exists with at least partitions
// partitions (any count when partitions is -1), for at most
// awaitTopicWaitMax (a creation of 10,000 partitions takes about a minute
// on a busy machine) or until ctx ends (Ctrl-C).
func awaitTopic(ctx context.Context, admin *kadm.Client, topic string, partitions int32) error {
	ctx, cancel := context.WithTimeout(ctx, awaitTopicWaitMax)
	defer cancel()
	for {
		details, err := admin.ListTopics(ctx, topic)
		if err == nil {
			if d, ok := details[topic]; ok && d.Err == nil && (partitions < 0 || int32(len(d.Partitions)) >= partitions) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(awaitTopicPollInterval):
		}
	}
}

// awaitTopicPollInterval is how often awaitTopic asks, and
// awaitTopicWaitMax how long it waits in all.
const (
	awaitTopicPollInterval = 500 * time.Millisecond
	awaitTopicWaitMax      = 10 * time.Minute
)

func topicListFlags(fs *flagSet) func(*invocation, []string) error {
	internal := fs.fs.Bool("internal", false, "include internal topics such as __consumer_offsets")
	return func(inv *invocation, args []string) error {
		if len(args) > 0 {
			return fs.usageErrorf("topic list takes no arguments (got %q)", args[0])
		}
		return topicList(inv, *internal)
	}
}

func topicList(inv *invocation, internal bool) error {
	return inv.withAdmin(func(ctx context.Context, admin *kadm.Client) error {
		list := admin.ListTopics
		if internal {
			list = admin.ListTopicsWithInternal
		}
		topics, err := list(ctx)
		if err != nil {
			return requestError("list topics", err)
		}
		table := newTable(inv.stdout, "NAME", "PARTITIONS", "REPLICAS")
		for _, d := range topics.Sorted() {
			if d.Err != nil {
				inv.reportf("topic list %s: %s", d.Topic, kafkaError(d.Err, ""))
				continue
			}
			table.row(d.Topic, len(d.Partitions), d.Partitions.NumReplicas())
		}
		return table.flush()
	})
}

func topicDescribeFlags(fs *flagSet) func(*invocation, []string) error {
	return func(inv *invocation, names []string) error {
		if err := checkNames(fs, "topic", names); err != nil {
			return err
		}
		return topicDescribe(inv, names)
	}
}

// topicState is everything "topic describe" shows about one topic.
type topicState struct {
	detail  kadm.TopicDetail
	configs kadm.ResourceConfig
	starts  kadm.ListedOffsets
	ends    kadm.ListedOffsets
}

func topicDescribe(inv *invocation, names []string) error {
	return inv.withAdmin(func(ctx context.Context, admin *kadm.Client) error {
		details, err := admin.ListTopicsWithInternal(ctx, names...)
		if err != nil {
			return requestError("describe topics", err)
		}
		failed := false
		for i, name := range names {
			d, ok := details[name]
			if !ok || d.Err != nil {
				cause := "the broker did not describe it"
				if ok {
					cause = kafkaError(d.Err, "")
				}
				inv.reportf("topic describe %s: %s", name, cause)
				failed = true
				continue
			}
			state := topicState{detail: d}
			if err := loadTopicState(inv, admin, &state); err != nil {
				return err
			}
			if i > 0 {
				fmt.Fprintln(inv.stdout)
			}
			if err := printTopic(inv.stdout, state); err != nil {
				return err
			}
		}
		if failed {
			return errReported
		}
		return nil
	})
}

// loadTopicState fetches a topic's configs and its start and end offsets.
func loadTopicState(inv *invocation, admin *kadm.Client, state *topicState) error {
	ctx, cancel := inv.requestContext()
	defer cancel()
	name := state.detail.Topic
	for {
		configs, err := admin.DescribeTopicConfigs(ctx, name)
		if err != nil {
			return requestError("describe configs of "+name, err)
		}
		if state.configs, err = configs.On(name, nil); err != nil {
			return requestError("describe configs of "+name, err)
		}
		if state.configs.Err == nil {
			break
		}
		if !settling(state.configs.Err) || !settlePause(ctx) {
			return fmt.Errorf("describe configs of %s: %s", name, kafkaError(state.configs.Err, state.configs.ErrMessage))
		}
	}
	var err error
	if state.starts, err = listSettled(ctx, admin.ListStartOffsets, name); err != nil {
		return requestError("list start offsets of "+name, err)
	}
	if state.ends, err = listSettled(ctx, admin.ListEndOffsets, name); err != nil {
		return requestError("list end offsets of "+name, err)
	}
	return nil
}

// settleInterval is how often topic describe asks again while a topic
// that was just created is still reaching its brokers.
const settleInterval = 200 * time.Millisecond

// settling reports whether err may only mean that a broker has not yet
// applied a topic the cluster metadata already has: right after a
// creation in a cluster, the leader of a partition answers
// UNKNOWN_TOPIC_OR_PARTITION or NOT_LEADER_FOR_PARTITION for a moment.
func settling(err error) bool {
	return errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, kerr.NotLeaderForPartition)
}

// settlePause waits settleInterval and reports true, or reports false at once
// when ctx ends first.
func settlePause(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(settleInterval):
		return true
	}
}

// listSettled lists topic's offsets with list, again while some partition
// answers a settling error, until ctx ends; then the last listing stands
// and those partitions show their error's name.
func listSettled(ctx context.Context, list func(context.Context, ...string) (kadm.ListedOffsets, error), topic string) (kadm.ListedOffsets, error) {
	for {
		offsets, err := tolerateLeaderless(list(ctx, topic))
		if err != nil {
			return offsets, err
		}
		waiting := false
		offsets.Each(func(o kadm.ListedOffset) { waiting = waiting || settling(o.Err) })
		if !waiting || !settlePause(ctx) {
			return offsets, nil
		}
	}
}

// tolerateLeaderless keeps a listing whose only failures are partitions
// without a leader (in a cluster, a partition whose broker is fenced and
// whose ISR has no other member), or whose leader cannot be reached (a
// broker that died and that the controller has not fenced yet, so the
// metadata still names it): nobody can say their offsets, so the table
// shows "-" instead of failing the whole topic. Any other failure is still
// an error.
func tolerateLeaderless(offsets kadm.ListedOffsets, err error) (kadm.ListedOffsets, error) {
	var shardErrors *kadm.ShardErrors
	if err == nil || !errors.As(err, &shardErrors) {
		return offsets, err
	}
	for _, e := range shardErrors.Errs {
		var unreachable *net.OpError
		if !errors.Is(e.Err, kerr.LeaderNotAvailable) && !errors.As(e.Err, &unreachable) {
			return offsets, err
		}
	}
	return offsets, nil
}

func printTopic(w io.Writer, s topicState) error {
	d := s.detail
	header := newTable(w)
	header.row("NAME", d.Topic)
	header.row("ID", topicIDText(d.ID))
	header.row("INTERNAL", d.IsInternal)
	header.row("PARTITIONS", len(d.Partitions))
	header.row("REPLICAS", d.Partitions.NumReplicas())
	configs := nonDefaultConfigs(s.configs.Configs)
	if len(configs) == 0 {
		configs = []string{"(all defaults)"}
	}
	for i, c := range configs {
		label := ""
		if i == 0 {
			label = "CONFIGS"
		}
		header.row(label, c)
	}
	if err := header.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	table := newTable(w, "PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "LOG-START-OFFSET", "HIGH-WATERMARK")
	for _, p := range d.Partitions.Sorted() {
		table.row(p.Partition, nodeText(p.Leader), p.LeaderEpoch, idsCell(p.Replicas), idsCell(p.ISR),
			offsetText(s.starts, d.Topic, p.Partition), offsetText(s.ends, d.Topic, p.Partition))
	}
	return table.flush()
}

// nonDefaultConfigs lists "key=value" for every config not at its default,
// naming the source when it is not a topic override.
func nonDefaultConfigs(configs []kadm.Config) []string {
	var out []string
	for _, c := range configs {
		if c.Source == kmsg.ConfigSourceDefaultConfig {
			continue
		}
		value := c.MaybeValue()
		if c.Sensitive {
			value = "(sensitive)"
		}
		text := c.Key + "=" + value
		if c.Source != kmsg.ConfigSourceDynamicTopicConfig {
			text += "  (" + c.Source.String() + ")"
		}
		out = append(out, text)
	}
	sort.Strings(out)
	return out
}

// offsetText is a listed offset, or its error's name.
func offsetText(offsets kadm.ListedOffsets, topic string, partition int32) string {
	o, ok := offsets.Lookup(topic, partition)
	switch {
	case !ok:
		return "-"
	case o.Err != nil:
		return kafkaErrorName(o.Err)
	}
	return strconv.FormatInt(o.Offset, 10)
}

// idsCell is a list of broker ids for a table cell: joined with commas,
// or "-" for none (an ISR can be empty), so that every cell holds
// something.
func idsCell(ids []int32) string {
	if len(ids) == 0 {
		return "-"
	}
	return joinInt32s(ids)
}

func joinInt32s(values []int32) string {
	text := make([]string, len(values))
	for i, v := range values {
		text[i] = strconv.Itoa(int(v))
	}
	return strings.Join(text, ",")
}

func topicDeleteFlags(fs *flagSet) func(*invocation, []string) error {
	return func(inv *invocation, names []string) error {
		if err := checkNames(fs, "topic", names); err != nil {
			return err
		}
		return topicDelete(inv, names)
	}
}

func topicDelete(inv *invocation, names []string) error {
	return inv.withAdmin(func(ctx context.Context, admin *kadm.Client) error {
		deleted, err := admin.DeleteTopics(ctx, names...)
		if err != nil {
			return requestError("delete topics", err)
		}
		return reportPerName(inv, "topic", names, func(name string) (bool, string, error) {
			r, ok := deleted[name]
			return ok, r.ErrMessage, r.Err
		})
	})
}

// reportPerName prints "deleted KIND NAME" for each name that succeeded and
// an error line for each that failed or got no answer, and returns
// errReported if any failed.
func reportPerName(inv *invocation, kind string, names []string, result func(name string) (answered bool, message string, err error)) error {
	failed := false
	for _, name := range names {
		answered, message, err := result(name)
		switch {
		case !answered:
			inv.reportf("%s delete %s: the broker did not answer for this %s", kind, name, kind)
			failed = true
		case err != nil:
			inv.reportf("%s delete %s: %s", kind, name, kafkaError(err, message))
			failed = true
		default:
			fmt.Fprintf(inv.stdout, "deleted %s %s\n", kind, name)
		}
	}
	if failed {
		return errReported
	}
	return nil
}

func topicAddPartitionsFlags(fs *flagSet) func(*invocation, []string) error {
	count := fs.fs.Int("n", 0, "number of partitions to add (required, positive)")
	return func(inv *invocation, names []string) error {
		if err := checkNames(fs, "topic", names); err != nil {
			return err
		}
		if *count <= 0 || *count > 1<<31-1 {
			return fs.usageErrorf("-n %d: give the number of partitions to add, a positive count", *count)
		}
		return topicAddPartitions(inv, names, *count)
	}
}

func topicAddPartitions(inv *invocation, names []string, count int) error {
	return inv.withAdmin(func(ctx context.Context, admin *kadm.Client) error {
		added, err := admin.CreatePartitions(ctx, count, names...)
		if err != nil {
			return requestError("add partitions", err)
		}
		failed := false
		for _, name := range names {
			r, ok := added[name]
			switch {
			case !ok:
				inv.reportf("topic add-partitions %s: the broker did not answer for this topic", name)
				failed = true
			case r.Err != nil:
				inv.reportf("topic add-partitions %s: %s", name, kafkaError(r.Err, r.ErrMessage))
				failed = true
			default:
				fmt.Fprintf(inv.stdout, "added %d %s to topic %s\n", count, plural(count, "partition"), name)
			}
		}
		if failed {
			return errReported
		}
		return nil
	})
}

// table writes aligned columns.
type table struct {
	w *tabwriter.Writer
}

func newTable(w io.Writer, header ...any) *table {
	t := &table{w: tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cells ...any) {
	text := make([]string, len(cells))
	for i, c := range cells {
		text[i] = fmt.Sprint(c)
	}
	fmt.Fprintln(t.w, strings.Join(text, "\t"))
}

func (t *table) flush() error { return t.w.Flush() }

// plural is noun, with an "s" unless count is 1.
func plural(count int, noun string) string {
	if count == 1 {
		return noun
	}
	return noun + "s"
}
