package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Shape of the progress bar.
const (
	progressBarWidth = 30
	// progressRedrawInterval limits redraws, so that a fast sweep on many
	// cores does not spend its terminal on them.
	progressRedrawInterval = 100 * time.Millisecond
)

// progressBar draws a sweep's progress on one line of a terminal. A nil
// *progressBar (standard error is not a terminal) draws nothing. It is
// used from one goroutine only.
type progressBar struct {
	w                io.Writer
	now              func() time.Time
	start, lastDrawn time.Time
	total            int64
	finished, failed int64
	visible          bool
}

func newProgressBar(w io.Writer, total int64, now func() time.Time) *progressBar {
	if w == nil {
		return nil
	}
	return &progressBar{w: w, now: now, start: now(), total: total}
}

// completed counts one finished run and redraws, at most once per
// progressRedrawInterval.
func (p *progressBar) completed(out seedOutcome) {
	if p == nil {
		return
	}
	p.finished++
	if !out.passed {
		p.failed++
	}
	if p.now().Sub(p.lastDrawn) >= progressRedrawInterval {
		p.draw()
	}
}

// draw writes the bar over the current line.
func (p *progressBar) draw() {
	if p == nil {
		return
	}
	p.lastDrawn = p.now()
	io.WriteString(p.w, "\r"+renderProgress(p.finished, p.failed, p.total, p.lastDrawn.Sub(p.start))+"\x1b[K")
	p.visible = true
}

// clear erases the bar, so that a line of standard output printed to the
// same terminal is not mixed with it.
func (p *progressBar) clear() {
	if p == nil || !p.visible {
		return
	}
	io.WriteString(p.w, "\r\x1b[K")
	p.visible = false
}

// renderProgress is the text of the bar: how much is done, how much
// failed, and an estimate of the time left from the pace so far.
func renderProgress(finished, failed, total int64, elapsed time.Duration) string {
	filled := 0
	if total > 0 {
		filled = int(finished * progressBarWidth / total)
	}
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", progressBarWidth-filled)
	text := fmt.Sprintf("[%s] %d/%d seeds, %d failed, %v", bar, finished, total, failed, elapsed.Round(time.Second))
	if finished > 0 && finished < total {
		left := time.Duration(int64(elapsed) / finished * (total - finished))
		text += fmt.Sprintf(", about %v left", left.Round(time.Second))
	}
	return text
}
