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

// instanceProgress implements stages.Progress for one instance by emitting
// throttled progress and status events.
type instanceProgress struct {
	sink     *eventSink
	instance string

	mu         sync.Mutex
	total      int64
	done       int64
	unit       string
	lastEmit   time.Time
	lastStatus time.Time
}

func newInstanceProgress(sink *eventSink, instance string) *instanceProgress {
	return &instanceProgress{sink: sink, instance: instance}
}

// Start implements stages.Progress.
func (p *instanceProgress) Start(total int64, unit string) {
	p.mu.Lock()
	p.total, p.done, p.unit = total, 0, unit
	p.lastEmit = time.Now()
	e := Event{Instance: p.instance, Kind: EventProgress, Done: 0, Total: total, Unit: unit}
	p.mu.Unlock()
	p.sink.emit(e)
}

// Add implements stages.Progress. The event that reaches the total is never
// throttled away, so a display always sees the bar complete.
func (p *instanceProgress) Add(n int64) {
	p.mu.Lock()
	p.done += n
	now := time.Now()
	finished := p.total > 0 && p.done >= p.total
	if !finished && now.Sub(p.lastEmit) < progressInterval {
		p.mu.Unlock()
		return
	}
	p.lastEmit = now
	e := Event{Instance: p.instance, Kind: EventProgress, Done: p.done, Total: p.total, Unit: p.unit}
	p.mu.Unlock()
	p.sink.emit(e)
}

// Status implements stages.Progress.
func (p *instanceProgress) Status(msg string) {
	p.mu.Lock()
	now := time.Now()
	if now.Sub(p.lastStatus) < progressInterval {
		p.mu.Unlock()
		return
	}
	p.lastStatus = now
	p.mu.Unlock()
	p.sink.emit(Event{Instance: p.instance, Kind: EventStatus, Message: msg})
}
