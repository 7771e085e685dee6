package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/kafkasim/kafkasim/checker"
	"github.com/kafkasim/kafkasim/sim/scenario"
)

// reportLinesMax caps the anomalies a failed run prints: one seed once
// printed 18,474 lines, burying the verdict. The full list goes to a file.
const reportLinesMax = 20

// kindCount is how many anomalies of one kind a check found, and how many
// of them the capped report shows.
type kindCount struct {
	kind         checker.AnomalyKind
	first, count int // the kind's anomalies are anomalies[first : first+count]
	shown        int
}

// countByKind groups anomalies, which the checker sorts by kind, into runs
// of one kind each.
func countByKind(anomalies []checker.Anomaly) []kindCount {
	var kinds []kindCount
	for i, a := range anomalies {
		if len(kinds) == 0 || kinds[len(kinds)-1].kind != a.Kind {
			kinds = append(kinds, kindCount{kind: a.Kind, first: i})
		}
		kinds[len(kinds)-1].count++
	}
	return kinds
}

// shareLines hands out linesMax report lines one kind at a time, so that
// a flood of one kind cannot hide a rarer kind: every kind gets a line
// before any kind gets a second.
func shareLines(kinds []kindCount, linesMax int) {
	for remaining := linesMax; remaining > 0; {
		handed := false
		for i := range kinds {
			if remaining > 0 && kinds[i].shown < kinds[i].count {
				kinds[i].shown++
				remaining--
				handed = true
			}
		}
		if !handed {
			return
		}
	}
}

// writeCappedReport prints a failed check: the verdict, then per kind its
// count and its first anomalies (reportLinesMax in all), the partitions
// whose linearizability failed or is undecided, and where the full report
// is. fullPath is empty when the full report could not be written.
func writeCappedReport(w io.Writer, check *checker.Result, fullPath string) {
	fmt.Fprintln(w, check.Verdict)
	if check.Err != nil {
		fmt.Fprintf(w, "  error: %v\n", check.Err)
	}
	kinds := countByKind(check.Anomalies)
	shareLines(kinds, reportLinesMax)
	for _, k := range kinds {
		fmt.Fprintf(w, "  %s x%d%s:\n", k.kind, k.count, shownNote(k))
		for _, a := range check.Anomalies[k.first : k.first+k.shown] {
			fmt.Fprintf(w, "    %s\n", a)
		}
	}
	for _, p := range check.Partitions {
		if p.Verdict != checker.LinearizableOK {
			fmt.Fprintf(w, "  %s\n", partitionLine(p))
		}
	}
	if fullPath != "" {
		fmt.Fprintf(w, "  full report (%d anomalies, %d partitions): %s\n", len(check.Anomalies), len(check.Partitions), fullPath)
	}
}

func shownNote(k kindCount) string {
	if k.shown == k.count {
		return ""
	}
	return fmt.Sprintf(", the first %d", k.shown)
}

// partitionLine renders one partition's linearizability verdict as the
// checker's own report does.
func partitionLine(p checker.PartitionResult) string {
	line := fmt.Sprintf("partition %s: %d ops, %d linearized, %s by %s", p.Partition, p.Ops, p.Linearized, p.Verdict, p.Method)
	if p.Method == checker.MethodPorcupine {
		line += fmt.Sprintf(" in %d steps", p.Steps)
	}
	return line
}

// writeFullReport writes every anomaly and every partition's verdict,
// under a header naming the run.
func writeFullReport(path string, seed uint64, faults scenario.Faults, swarm bool, check *checker.Result, quorum *checker.QuorumResult) error {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d, faults %s\nreproduce: %s\n", seed, faults, reproduceCommand(seed, faults, swarm))
	if check.Err != nil {
		fmt.Fprintf(&b, "error: %v\n", check.Err)
	}
	b.WriteString(check.Report())
	if quorum != nil {
		b.WriteString("\ncontroller quorum:\n")
		b.WriteString(quorum.Report())
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// writeCappedQuorumReport prints a failed quorum check: its report (the
// verdict, one line per anomaly and finding) up to reportLinesMax lines,
// and where the full report is.
func writeCappedQuorumReport(w io.Writer, quorum *checker.QuorumResult, fullPath string) {
	lines := strings.Split(strings.TrimRight(quorum.Report(), "\n"), "\n")
	for i, line := range lines {
		if i > reportLinesMax {
			fmt.Fprintf(w, "  ... %d more lines\n", len(lines)-i)
			break
		}
		fmt.Fprintf(w, "  %s\n", line)
	}
	if fullPath != "" {
		fmt.Fprintf(w, "  full report: %s\n", fullPath)
	}
}

// uncleanNoteBytesMax caps the unclean-election line of a run's summary;
// the full report keeps the whole note.
const uncleanNoteBytesMax = 400

// writeUncleanSummary prints what the run's unclean leader elections lost,
// the checker's note on them (docs/checker.md, "Unclean elections"), when
// there were any.
func writeUncleanSummary(w io.Writer, check *checker.Result) {
	for _, c := range check.Checks {
		if c.Name != "unclean-election" || c.Checked == 0 {
			continue
		}
		note := c.Note
		if len(note) > uncleanNoteBytesMax {
			note = note[:uncleanNoteBytesMax] + "..."
		}
		fmt.Fprintf(w, "  unclean elections: %d; %s\n", c.Checked, note)
	}
}

// writeQuorumSummary prints a cluster run's quorum verdict and, when
// liveness was judged, how long after the heal a controller was active
// and the bound it had.
func writeQuorumSummary(w io.Writer, result scenario.Result) {
	q := result.Quorum
	fmt.Fprintf(w, "  quorum: %s\n", q.Verdict)
	writeUncleanSummary(w, &result.Check)
	if result.HealTime < 0 {
		return
	}
	if q.ControllerActiveTime >= 0 {
		fmt.Fprintf(w, "  controller active %v after the heal (bound %v)\n",
			(time.Duration(q.ControllerActiveTime) - result.HealTime).Round(time.Millisecond), scenario.QuorumLivenessBound)
	}
}
