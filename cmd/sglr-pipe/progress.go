package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/sglr-pipe/sglr-pipe/pipeline"
)

// display shows the events of a run as they happen. The pipeline calls Event
// one call at a time; Close flushes whatever the display still holds.
type display interface {
	Event(e pipeline.Event)
	Close()
}

// newDisplay picks the display for the output: JSON lines when asked, bars
// on a terminal, plain log lines otherwise.
func newDisplay(w io.Writer, asJSON, terminal bool) display {
	switch {
	case asJSON:
		return &jsonDisplay{enc: json.NewEncoder(w)}
	case terminal:
		return newBarDisplay(w)
	default:
		return &logDisplay{w: w, lastProgress: map[string]time.Time{}}
	}
}

// jsonDisplay writes every event as one JSON object per line.
type jsonDisplay struct {
	enc *json.Encoder
}

// Event implements display.
func (d *jsonDisplay) Event(e pipeline.Event) { _ = d.enc.Encode(e) }

// Close implements display.
func (d *jsonDisplay) Close() {}

// logProgressEvery throttles progress lines in log mode: a CI log needs a
// heartbeat, not every tick.
const logProgressEvery = 5 * time.Second

// logDisplay writes one timestamped line per event worth a line, for logs
// and pipes: "[12:01:02] noisy[noise=0.2] ran in 0.4s".
type logDisplay struct {
	w            io.Writer
	lastProgress map[string]time.Time
	status       map[string]string
}

// Event implements display.
func (d *logDisplay) Event(e pipeline.Event) {
	if line := d.line(e); line != "" {
		fmt.Fprintf(d.w, "[%s] %s\n", e.Time.Local().Format("15:04:05"), line)
	}
}

// line renders one event, or "" for events that get no line of their own.
func (d *logDisplay) line(e pipeline.Event) string {
	switch e.Kind {
	case pipeline.EventPlan:
		return ""
	case pipeline.EventStatus:
		if d.status == nil {
			d.status = map[string]string{}
		}
		d.status[e.Instance] = e.Message
		return ""
	case pipeline.EventProgress:
		last, seen := d.lastProgress[e.Instance]
		finished := e.Total > 0 && e.Done >= e.Total
		if finished || (seen && e.Time.Sub(last) < logProgressEvery) || (!seen && e.Done == 0) {
			d.lastProgress[e.Instance] = e.Time
			return ""
		}
		d.lastProgress[e.Instance] = e.Time
		line := fmt.Sprintf("%s %s", e.Instance, progressCount(e.Done, e.Total, e.Unit))
		if s := d.status[e.Instance]; s != "" {
			line += "  " + s
		}
		return line
	default:
		return finishedLine(e)
	}
}

// finishedLine renders the events that start or end an instance.
func finishedLine(e pipeline.Event) string {
	switch e.Kind {
	case pipeline.EventCached:
		return e.Instance + " cached"
	case pipeline.EventStart:
		if e.Message != "" {
			return fmt.Sprintf("%s started (%s)", e.Instance, e.Message)
		}
		return e.Instance + " started"
	case pipeline.EventDone:
		return fmt.Sprintf("%s ran in %s", e.Instance, formatSeconds(e.Seconds))
	case pipeline.EventFailed:
		return fmt.Sprintf("%s FAILED after %s: %s", e.Instance, formatSeconds(e.Seconds), e.Err)
	case pipeline.EventSkipped:
		if e.Message != "" {
			return fmt.Sprintf("%s skipped (%s)", e.Instance, e.Message)
		}
		return e.Instance + " skipped"
	case pipeline.EventCancelled:
		return e.Instance + " cancelled"
	}
	return ""
}

// Close implements display.
func (d *logDisplay) Close() {}

// barDisplay draws one mpb bar per running instance and prints a line above
// the bars when an instance finishes or is found cached.
type barDisplay struct {
	progress *mpb.Progress
	bars     map[string]*instanceBar
}

// instanceBar is the bar of one running instance and what its decorators show.
type instanceBar struct {
	bar *mpb.Bar

	started time.Time

	mu          sync.Mutex
	done, total int64
	unit        string
	status      string
}

// counter renders "3/10 epochs", or nothing before the stage reports progress.
func (ib *instanceBar) counter(decor.Statistics) string {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	if ib.done == 0 && ib.total == 0 {
		return ""
	}
	return progressCount(ib.done, ib.total, ib.unit)
}

// timing renders the ETA while the total is known and progress was made,
// else the time the instance has been running; then the stage's status.
func (ib *instanceBar) timing(decor.Statistics) string {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	elapsed := time.Since(ib.started)
	text := formatSeconds(elapsed.Seconds())
	if ib.total > 0 && ib.done > 0 && ib.done < ib.total {
		eta := time.Duration(float64(elapsed) * float64(ib.total-ib.done) / float64(ib.done))
		text = "eta " + formatSeconds(eta.Seconds())
	}
	if ib.status != "" {
		text += "  " + ib.status
	}
	return text
}

func newBarDisplay(w io.Writer) *barDisplay {
	return &barDisplay{
		progress: mpb.New(mpb.WithOutput(w), mpb.WithWidth(100), mpb.WithRefreshRate(150*time.Millisecond)),
		bars:     map[string]*instanceBar{},
	}
}

// Event implements display.
func (d *barDisplay) Event(e pipeline.Event) {
	switch e.Kind {
	case pipeline.EventPlan:
	case pipeline.EventStart:
		d.start(e.Instance)
	case pipeline.EventProgress:
		if b := d.bars[e.Instance]; b != nil {
			b.progress(e.Done, e.Total, e.Unit)
		}
	case pipeline.EventStatus:
		if b := d.bars[e.Instance]; b != nil {
			b.mu.Lock()
			b.status = e.Message
			b.mu.Unlock()
		}
	default:
		if b := d.bars[e.Instance]; b != nil {
			delete(d.bars, e.Instance)
			if e.Kind == pipeline.EventDone {
				b.bar.SetTotal(-1, true)
			} else {
				b.bar.Abort(true)
			}
		}
		if line := finishedLine(e); line != "" {
			fmt.Fprintf(d.progress, "[%s] %s\n", e.Time.Local().Format("15:04:05"), line)
		}
	}
}

// start adds the bar of an instance that began running.
func (d *barDisplay) start(instance string) {
	ib := &instanceBar{started: time.Now()}
	ib.bar = d.progress.New(0, mpb.BarStyle(),
		mpb.BarRemoveOnComplete(),
		mpb.PrependDecorators(
			decor.Name(instance, decor.WCSyncSpaceR),
			decor.Any(ib.counter, decor.WCSyncSpaceR),
		),
		mpb.AppendDecorators(decor.Any(ib.timing, decor.WC{W: 1})),
	)
	d.bars[instance] = ib
}

// progress moves the bar. The bar's own count stays one short of its total
// until the instance is done, so that a stage reaching 100% before it has
// written its outputs does not complete (and remove) the bar early.
func (ib *instanceBar) progress(done, total int64, unit string) {
	ib.mu.Lock()
	ib.done, ib.total, ib.unit = done, total, unit
	ib.mu.Unlock()
	if total <= 0 {
		return
	}
	ib.bar.SetTotal(total, false)
	ib.bar.SetCurrent(min(done, total-1))
}

// Close implements display: it drops bars left by an interrupted run and
// waits for the last render.
func (d *barDisplay) Close() {
	for id, b := range d.bars {
		b.bar.Abort(true)
		delete(d.bars, id)
	}
	d.progress.Wait()
}

// progressCount renders "3/10 epochs", "3 epochs" when the total is unknown.
func progressCount(done, total int64, unit string) string {
	s := compactCount(done)
	if total > 0 {
		s += "/" + compactCount(total)
	}
	if unit != "" {
		s += " " + unit
	}
	return s
}

// compactCount writes counts below 10 000 in full and larger ones with a
// k, M or G suffix and three significant digits (eval counts model passes in
// the millions): 950, 12.3k, 1.69M.
func compactCount(n int64) string {
	v := float64(n)
	for _, u := range []struct {
		scale  float64
		suffix string
	}{{1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if n >= 10000 && v >= u.scale {
			return strconv.FormatFloat(v/u.scale, 'f', max(0, 2-int(math.Log10(v/u.scale))), 64) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// formatSeconds renders a duration in seconds compactly: 0.42s, 12.3s, 4m05s.
func formatSeconds(s float64) string {
	switch {
	case s < 10:
		return fmt.Sprintf("%.2fs", s)
	case s < 60:
		return fmt.Sprintf("%.1fs", s)
	default:
		d := time.Duration(s * float64(time.Second)).Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
}
