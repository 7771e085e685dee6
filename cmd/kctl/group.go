package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
)

// groupCommands are the subcommands of "kctl group".
var groupCommands = []command{
	{
		name:        "list",
		synopsis:    "",
		summary:     "List consumer groups with their states.",
		description: "Lists every consumer group with its state, protocol type and coordinator.",
		examples:    []string{"kctl group list"},
		flags:       groupListFlags,
	},
	{
		name:     "describe",
		synopsis: "GROUP...",
		summary:  "Show a group's members, committed offsets and lag.",
		description: "Shows a group's state, protocol, members with their assignments, and per partition its\n" +
			"committed offset, end offset and lag.",
		examples: []string{"kctl group describe workers"},
		flags:    groupDescribeFlags,
	},
	{
		name:        "delete",
		synopsis:    "GROUP...",
		summary:     "Delete empty groups and their committed offsets.",
		description: "Deletes each named group and its committed offsets; a group with members is refused.",
		examples:    []string{"kctl group delete workers"},
		flags:       groupDeleteFlags,
	},
	resetOffsetsCommand,
}

func groupListFlags(fs *flagSet) func(*invocation, []string) error {
	return func(inv *invocation, args []string) error {
		if len(args) > 0 {
			return fs.usageErrorf("group list takes no arguments (got %q)", args[0])
		}
		admin, closeAdmin, err := inv.connectAdmin()
		if err != nil {
			return err
		}
		defer closeAdmin()
		ctx, cancel := inv.requestContext()
		defer cancel()
		groups, err := admin.ListGroups(ctx)
		if err != nil {
			return requestError("list groups", err)
		}
		table := newTable(inv.stdout, "GROUP", "STATE", "PROTOCOL-TYPE", "COORDINATOR")
		for _, g := range groups.Sorted() {
			table.row(g.Group, orDash(g.State), orDash(g.ProtocolType), g.Coordinator)
		}
		return table.flush()
	}
}

func groupDescribeFlags(fs *flagSet) func(*invocation, []string) error {
	return func(inv *invocation, names []string) error {
		if err := checkNames(fs, "group", names); err != nil {
			return err
		}
		return groupDescribe(inv, names)
	}
}

func groupDescribe(inv *invocation, names []string) error {
	return inv.withAdmin(func(ctx context.Context, admin *kadm.Client) error {
		lags, err := admin.Lag(ctx, names...)
		if err != nil {
			return requestError("describe groups", err)
		}
		failed, shown := false, 0
		for _, name := range names {
			l, ok := lags[name]
			switch {
			case !ok:
				inv.reportf("group describe %s: the broker did not describe it", name)
				failed = true
				continue
			case l.Error() != nil:
				inv.reportf("group describe %s: %s", name, kafkaError(l.Error(), ""))
				failed = true
				continue
			case l.State == "Dead" && len(l.Members) == 0 && len(l.Lag) == 0:
				inv.reportf("group describe %s: the group does not exist", name)
				failed = true
				continue
			}
			if shown > 0 {
				fmt.Fprintln(inv.stdout)
			}
			shown++
			if err := printGroup(inv.stdout, l); err != nil {
				return err
			}
		}
		if failed {
			return errReported
		}
		return nil
	})
}

func printGroup(w io.Writer, l kadm.DescribedGroupLag) error {
	header := newTable(w)
	header.row("GROUP", l.Group)
	header.row("COORDINATOR", l.Coordinator.NodeID)
	header.row("STATE", orDash(l.State))
	header.row("PROTOCOL", orDash(strings.Trim(l.ProtocolType+"/"+l.Protocol, "/")))
	header.row("MEMBERS", len(l.Members))
	header.row("TOTAL-LAG", l.Lag.Total())
	if err := header.flush(); err != nil {
		return err
	}
	if len(l.Members) > 0 {
		fmt.Fprintln(w)
		members := newTable(w, "MEMBER-ID", "CLIENT-ID", "HOST", "ASSIGNMENTS")
		for _, m := range l.Members {
			members.row(m.MemberID, m.ClientID, m.ClientHost, assignmentText(m))
		}
		if err := members.flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	table := newTable(w, "TOPIC", "PARTITION", "COMMITTED-OFFSET", "END-OFFSET", "LAG", "MEMBER-ID")
	for _, p := range l.Lag.Sorted() {
		table.row(p.Topic, p.Partition, committedText(p), offsetCell(p.End), lagText(p), memberText(p.Member))
	}
	return table.flush()
}

// assignmentText is "topic[0,1] other[2]", or "-" for none.
func assignmentText(m kadm.DescribedGroupMember) string {
	assigned, ok := m.Assigned.AsConsumer()
	if !ok || len(assigned.Topics) == 0 {
		return "-"
	}
	var parts []string
	for _, t := range assigned.Topics {
		partitions := append([]int32(nil), t.Partitions...)
		sort.Slice(partitions, func(i, j int) bool { return partitions[i] < partitions[j] })
		parts = append(parts, t.Topic+"["+joinInt32s(partitions)+"]")
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func committedText(p kadm.GroupMemberLag) string {
	if p.Commit.At < 0 {
		return "-"
	}
	return fmt.Sprint(p.Commit.At)
}

func offsetCell(o kadm.ListedOffset) string {
	if o.Err != nil {
		return kafkaErrorName(o.Err)
	}
	return fmt.Sprint(o.Offset)
}

func lagText(p kadm.GroupMemberLag) string {
	if p.Err != nil {
		return kafkaErrorName(p.Err)
	}
	if p.Lag < 0 {
		return "-"
	}
	return fmt.Sprint(p.Lag)
}

func memberText(m *kadm.DescribedGroupMember) string {
	if m == nil {
		return "-"
	}
	return m.MemberID
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func groupDeleteFlags(fs *flagSet) func(*invocation, []string) error {
	return func(inv *invocation, names []string) error {
		if err := checkNames(fs, "group", names); err != nil {
			return err
		}
		admin, closeAdmin, err := inv.connectAdmin()
		if err != nil {
			return err
		}
		defer closeAdmin()
		ctx, cancel := inv.requestContext()
		defer cancel()
		deleted, err := admin.DeleteGroups(ctx, names...)
		if err != nil {
			return requestError("delete groups", err)
		}
		return reportPerName(inv, "group", names, func(name string) (bool, string, error) {
			r, ok := deleted[name]
			return ok, r.ErrMessage, r.Err
		})
	}
}
