package group

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (h *harness) list(version int16, states ...string) []kmsg.ListGroupsResponseGroup {
	req := kmsg.NewPtrListGroupsRequest()
	req.Version = version
	req.StatesFilter = states
	r := &reply[*kmsg.ListGroupsResponse]{t: h.t}
	h.c.ListGroups(req, r.respond)
	return r.got.Groups
}

func (h *harness) describe(version int16, groups ...string) []kmsg.DescribeGroupsResponseGroup {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version = version
	req.Groups = groups
	r := &reply[*kmsg.DescribeGroupsResponse]{t: h.t}
	h.c.DescribeGroups(req, r.respond)
	return r.got.Groups
}

func (h *harness) deleteGroups(groups ...string) *reply[*kmsg.DeleteGroupsResponse] {
	req := kmsg.NewPtrDeleteGroupsRequest()
	req.Version = 2
	req.Groups = groups
	r := &reply[*kmsg.DeleteGroupsResponse]{t: h.t}
	h.c.DeleteGroups(req, r.respond)
	return r
}

// TestListAndDescribe checks that ListGroups returns groups sorted by id
// with their states and honours the v4 states filter, and that
// DescribeGroups reports members in join order with their assignments when
// Stable, and unknown groups as Dead (GROUP_ID_NOT_FOUND on v6).
func TestListAndDescribe(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, _ := h.stableGroup("zeta", 2)
	h.commit(commitReq("alpha", "", -1, "t", 0, 1))
	all := h.list(4)
	if len(all) != 2 || all[0].Group != "alpha" || all[0].GroupState != "Empty" || all[1].GroupState != "Stable" {
		t.Fatalf("list: %+v", all)
	}
	if stable := h.list(4, "stable"); len(stable) != 1 || stable[0].Group != "zeta" {
		t.Fatalf("filtered list: %+v", stable)
	}
	d := h.describe(6, "zeta", "missing")
	z := d[0]
	if z.State != "Stable" || z.Protocol != "range" || len(z.Members) != 2 {
		t.Fatalf("describe: %+v", z)
	}
	got := []string{z.Members[0].MemberID, z.Members[1].MemberID}
	if !slices.Contains(got, ids[0]) || string(z.Members[0].MemberAssignment) != "a-"+z.Members[0].MemberID {
		t.Fatalf("describe members: %+v", z.Members)
	}
	if d[1].State != "Dead" || d[1].ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("describe missing: %+v", d[1])
	}
	if old := h.describe(5, "missing"); old[0].ErrorCode != 0 || old[0].State != "Dead" {
		t.Fatalf("describe missing v5: %+v", old[0])
	}
}

// TestDeleteGroups checks that only Empty groups can be deleted, that the
// deletion is answered once the tombstones are durable, and that the group
// and its offsets stay gone after a restart.
func TestDeleteGroups(t *testing.T) {
	h := newHarness(t, testConfig())
	h.stableGroup("busy", 1)
	h.commit(commitReq("idle", "", -1, "t", 0, 4))
	h.store.mode = storeDelayed
	r := h.deleteGroups("idle", "busy", "missing")
	if r.done() {
		t.Fatal("delete answered before the tombstones were durable")
	}
	if st := h.c.groups["idle"].state; st != Dead {
		t.Fatalf("deleting group in %v", st)
	}
	h.store.flush()
	codes := []int16{r.got.Groups[0].ErrorCode, r.got.Groups[1].ErrorCode, r.got.Groups[2].ErrorCode}
	if !slices.Equal(codes, []int16{0, kerr.NonEmptyGroup.Code, kerr.GroupIDNotFound.Code}) {
		t.Fatalf("delete codes %v", codes)
	}
	if h.c.groups["idle"] != nil {
		t.Fatal("deleted group still present")
	}
	h.store.mode = storeImmediate
	h.restart()
	if off, _ := h.fetch("idle", "t", 0); off != -1 || h.c.groups["idle"] != nil {
		t.Fatalf("deleted group back after restart, offset %d", off)
	}
}

// TestDeleteGroupFailureRevives checks that a failed tombstone write leaves
// the group and its offsets in place, reported as COORDINATOR_NOT_AVAILABLE.
func TestDeleteGroupFailureRevives(t *testing.T) {
	h := newHarness(t, testConfig())
	h.commit(commitReq("idle", "", -1, "t", 0, 4))
	h.store.mode = storeFailing
	r := h.deleteGroups("idle")
	if !r.done() || r.got.Groups[0].ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("failed delete: %+v", r.got)
	}
	if g := h.c.groups["idle"]; g == nil || g.state != Empty {
		t.Fatal("group lost after a failed delete")
	}
	if off, _ := h.fetch("idle", "t", 0); off != 4 {
		t.Fatalf("offset %d after failed delete", off)
	}
}

// TestSupportedVersionsSorted checks that the advertised versions are sorted
// by API key and that an unadvertised version is refused with
// UNSUPPORTED_VERSION rather than handled.
func TestSupportedVersionsSorted(t *testing.T) {
	v := SupportedVersions()
	if !slices.IsSortedFunc(v, func(a, b APIVersions) int { return int(a.Key) - int(b.Key) }) {
		t.Fatalf("not sorted: %v", v)
	}
	h := newHarness(t, testConfig())
	r := h.join(joinReq("g", "", 10))
	if r.got.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("JoinGroup v10: %+v", r.got)
	}
}

// TestOffsetsPartitionMatchesKafka checks the group-to-partition hash
// against values of Kafka's Utils.abs(String.hashCode()) % 50, computed from
// the UTF-16 code units (including a surrogate pair) outside Go.
func TestOffsetsPartitionMatchesKafka(t *testing.T) {
	for group, want := range map[string]int32{ // order-independent: each case stands alone
		"my-group":           36, // hashCode -1906497762
		"console-consumer-1": 24, // hashCode 35782224
		"a\U0001F600b":       44, // hashCode 57849694
		"":                   0,
	} {
		if got := OffsetsPartition(group, 50); got != want {
			t.Errorf("OffsetsPartition(%q, 50) = %d, want %d", group, got, want)
		}
	}
}
