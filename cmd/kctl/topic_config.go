package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
)

// configKeys collects repeated --delete flags.
type configKeys []string

func (k *configKeys) String() string { return "" }

func (k *configKeys) Set(value string) error {
	key := strings.TrimSpace(value)
	if key == "" || strings.Contains(key, "=") {
		return fmt.Errorf("%q is not a config name (--delete takes a name, not key=value)", value)
	}
	if len(*k) >= configsPerCommandMax {
		return fmt.Errorf("more than %d configs", configsPerCommandMax)
	}
	*k = append(*k, key)
	return nil
}

func topicConfigFlags(fs *flagSet) func(*invocation, []string) error {
	sets := configFlag{}
	fs.fs.Var(sets, "set", "set a topic config, key=value (repeatable)")
	var deletes configKeys
	fs.fs.Var(&deletes, "delete", "remove a topic override so the broker default applies (repeatable)")
	return func(inv *invocation, args []string) error {
		if len(args) != 1 {
			return fs.usageErrorf("topic config takes exactly one topic (got %d arguments)", len(args))
		}
		for _, key := range deletes {
			if _, ok := sets[key]; ok {
				return fs.usageErrorf("%s is both in --set and in --delete", key)
			}
		}
		alters := configAlters(sets, deletes)
		return inv.withAdmin(func(ctx context.Context, admin *kadm.Client) error {
			if len(alters) > 0 {
				if err := alterTopicConfig(ctx, admin, args[0], alters); err != nil {
					return err
				}
			}
			return showTopicConfig(ctx, inv, admin, args[0])
		})
	}
}

// configAlters turns --set and --delete into IncrementalAlterConfigs
// operations, sorted by name so the request does not depend on map order.
func configAlters(sets configFlag, deletes []string) []kadm.AlterConfig {
	var alters []kadm.AlterConfig
	for key, value := range sets { // order-independent: sorted below
		alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: key, Value: value})
	}
	for _, key := range deletes {
		alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: key})
	}
	sort.Slice(alters, func(i, j int) bool { return alters[i].Name < alters[j].Name })
	return alters
}

// alterTopicConfig sends one IncrementalAlterConfigs request for the topic.
func alterTopicConfig(ctx context.Context, admin *kadm.Client, topic string, alters []kadm.AlterConfig) error {
	responses, err := admin.AlterTopicConfigs(ctx, alters, topic)
	if err != nil {
		return requestError("alter configs of "+topic, err)
	}
	r, err := responses.On(topic, nil)
	if err != nil {
		return fmt.Errorf("alter configs of %s: the broker did not answer for this topic", topic)
	}
	if r.Err != nil {
		return fmt.Errorf("alter configs of %s: %s", topic, kafkaError(r.Err, r.ErrMessage))
	}
	return nil
}

// showTopicConfig prints every setting of the topic with its source
// (DescribeConfigs), sorted by name.
func showTopicConfig(ctx context.Context, inv *invocation, admin *kadm.Client, topic string) error {
	described, err := admin.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return requestError("describe configs of "+topic, err)
	}
	rc, err := described.On(topic, nil)
	if err != nil {
		return fmt.Errorf("describe configs of %s: the broker did not answer for this topic", topic)
	}
	if rc.Err != nil {
		return fmt.Errorf("describe configs of %s: %s", topic, kafkaError(rc.Err, rc.ErrMessage))
	}
	configs := append([]kadm.Config(nil), rc.Configs...)
	sort.Slice(configs, func(i, j int) bool { return configs[i].Key < configs[j].Key })
	table := newTable(inv.stdout, "NAME", "VALUE", "SOURCE")
	for _, c := range configs {
		value := c.MaybeValue()
		switch {
		case c.Sensitive:
			value = "(sensitive)"
		case c.Value == nil:
			value = "(null)"
		case value == "":
			value = `""`
		}
		table.row(c.Key, value, configSourceText(c))
	}
	return table.flush()
}

// configSourceText names where a setting comes from, in the words of
// Kafka's kafka-configs.sh: a topic override, the broker's configuration,
// or the built-in default.
func configSourceText(c kadm.Config) string {
	text := c.Source.String()
	text = strings.TrimSuffix(text, "_CONFIG")
	return strings.ToLower(strings.ReplaceAll(text, "_", "-"))
}
