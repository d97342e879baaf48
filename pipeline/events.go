package pipeline

import (
	"sync"
	"time"
)

// Event kinds, in the order an instance usually meets them.
const (
	EventPlan      = "plan"      // the instance is part of this run (Message: "pending" or "not selected")
	EventCached    = "cached"    // a cache hit; nothing runs
	EventStart     = "start"     // the stage started (Message: why it runs)
	EventProgress  = "progress"  // Done of Total Unit
	EventStatus    = "status"    // a short status line from the stage (Message)
	EventDone      = "done"      // the stage finished and its outputs are stored (Seconds)
	EventFailed    = "failed"    // the stage failed (Err)
	EventSkipped   = "skipped"   // not run because an upstream instance failed or it was not selected (Message)
	EventCancelled = "cancelled" // stopped or never started because the run was cancelled
)

// Event is one thing that happened to one instance during Run. It encodes to
// one JSON object (the CLI's --json prints one per line).
type Event struct {
	Time     time.Time `json:"time"`
	Instance string    `json:"instance"`
	Kind     string    `json:"kind"`
	Done     int64     `json:"done,omitempty"`
	Total    int64     `json:"total,omitempty"`
	Unit     string    `json:"unit,omitempty"`
	Message  string    `json:"message,omitempty"`
	Seconds  float64   `json:"seconds,omitempty"`
	Err      string    `json:"err,omitempty"`
}

// progressInterval throttles progress and status events to about ten a
// second per instance, so a stage that reports every image cannot flood the
// display.
const progressInterval = 100 * time.Millisecond

// eventSink serialises calls to the user's callback, so it needs no locking
// of its own and events of one instance arrive in order.
type eventSink struct {
	mu sync.Mutex
	fn func(Event)
}

func (s *eventSink) emit(e Event) {
	if s == nil || s.fn == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fn(e)
}

// newInstanceProgress is the stages.Progress of one locally run instance:
// throttled progress and status events on sink.
func newInstanceProgress(sink *eventSink, instance string) *ThrottledProgress {
	return NewThrottledProgress(
		func(done, total int64, unit string) {
			sink.emit(Event{Instance: instance, Kind: EventProgress, Done: done, Total: total, Unit: unit})
		},
		func(msg string) { sink.emit(Event{Instance: instance, Kind: EventStatus, Message: msg}) })
}

// ThrottledProgress implements stages.Progress by handing bar snapshots and
// status lines to two functions, each at most about ten times a second. The
// snapshot of Start and the one that reaches the total are never throttled
// away, so a display always sees the bar begin and complete. The two
// functions are called outside its lock: they serialise themselves if they
// must (the local executor's event sink does).
type ThrottledProgress struct {
	bar    func(done, total int64, unit string)
	status func(msg string)

	mu         sync.Mutex
	total      int64
	done       int64
	unit       string
	lastBar    time.Time
	lastStatus time.Time
}

// NewThrottledProgress returns a ThrottledProgress that passes bar snapshots
// to bar and status lines to status; the executors (local and remote) use it
// so that every stage is throttled alike.
func NewThrottledProgress(bar func(done, total int64, unit string), status func(msg string)) *ThrottledProgress {
	return &ThrottledProgress{bar: bar, status: status}
}

// Start implements stages.Progress.
func (p *ThrottledProgress) Start(total int64, unit string) {
	p.mu.Lock()
	p.total, p.done, p.unit = total, 0, unit
	p.lastBar = time.Now()
	p.mu.Unlock()
	p.bar(0, total, unit)
}

// Add implements stages.Progress.
func (p *ThrottledProgress) Add(n int64) {
	p.mu.Lock()
	p.done += n
	now := time.Now()
	finished := p.total > 0 && p.done >= p.total
	if !finished && now.Sub(p.lastBar) < progressInterval {
		p.mu.Unlock()
		return
	}
	p.lastBar = now
	done, total, unit := p.done, p.total, p.unit
	p.mu.Unlock()
	p.bar(done, total, unit)
}

// Status implements stages.Progress.
func (p *ThrottledProgress) Status(msg string) {
	p.mu.Lock()
	now := time.Now()
	if now.Sub(p.lastStatus) < progressInterval {
		p.mu.Unlock()
		return
	}
	p.lastStatus = now
	p.mu.Unlock()
	p.status(msg)
}
