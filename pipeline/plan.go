package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// Options control Plan and Run.
type Options struct {
	Store    artifacts.Store // required
	Jobs     int             // core budget; 0 means runtime.NumCPU()
	Force    bool            // run every selected instance even if cached
	Only     []string        // decl ids: run only these; everything they read must be cached
	From     []string        // decl ids: force these and everything downstream of them
	Targets  []string        // decl ids: run these and what they need, nothing else
	FailFast bool            // on the first failure, cancel everything else
	Verify   bool            // re-hash the objects of cache hits
	// WillRead names the outputs the caller reads after the run (the CLI
	// prints leaf tables); those of cache hits are re-hashed like --verify, so
	// a corrupt one is rebuilt in the run instead of failing the reader.
	WillRead func(n *Node, port stages.Port) bool
	Events   func(Event) // called for every event, one call at a time; nil discards
	Args     []string    // command line, recorded in the run record
	Executor Executor    // nil means LocalExecutor
}

// Plan actions.
const (
	ActionCached = "cached"
	ActionRun    = "run"
	ActionSkip   = "skip"
)

// PlanEntry says what Run would do with one instance and why.
type PlanEntry struct {
	Instance string `json:"instance"`
	Stage    string `json:"stage"` // declaration id
	Uses     string `json:"uses"`
	Key      string `json:"key,omitempty"` // empty when an input will be rebuilt first
	Action   string `json:"action"`        // "cached", "run" or "skip"
	Reason   string `json:"reason,omitempty"`
}

// Plan computes, in dependency order, whether each instance is cached, will
// run, or is skipped, and why. A key can only be computed once the digests of
// every input are known, which is the case when every producer is a hit;
// otherwise the instance runs because its upstream does (and Run may still
// find it cached if the upstream reproduces the same bytes).
func (p *Pipeline) Plan(ctx context.Context, opts Options) ([]PlanEntry, error) {
	if opts.Store == nil {
		return nil, errors.New("plan: no store")
	}
	sel, err := p.selection(opts)
	if err != nil {
		return nil, err
	}
	outputs := make([]map[string]artifacts.Digest, len(p.Nodes)) // nil: will run
	entries := make([]PlanEntry, 0, len(p.Nodes))
	for _, n := range p.Nodes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		e := PlanEntry{Instance: n.ID(), Stage: n.Decl(), Uses: n.Uses()}
		mode := sel.mode[n.index]
		if mode == modeSkip {
			e.Action, e.Reason = ActionSkip, "not selected"
			entries = append(entries, e)
			continue
		}
		var rebuilt *Node
		for _, from := range n.Producers {
			if outputs[from.index] == nil {
				rebuilt = from
				break
			}
		}
		if rebuilt != nil {
			e.Action, e.Reason = ActionRun, "upstream "+rebuilt.ID()+" will run"
			if sel.forced[n.index] != "" {
				e.Reason = sel.forced[n.index]
			}
			entries = append(entries, e)
			continue
		}
		ks, _, err := n.keySpec(opts.Store, func(m *Node) map[string]artifacts.Digest { return outputs[m.index] }, false)
		if err != nil {
			return nil, err
		}
		if e.Key, err = CacheKey(ks); err != nil {
			return nil, fmt.Errorf("plan %s: %w", n.ID(), err)
		}
		if reason := sel.forced[n.index]; reason != "" {
			e.Action, e.Reason = ActionRun, reason
			entries = append(entries, e)
			continue
		}
		look, err := lookupCache(opts.Store, e.Key, outputPorts(n), opts.verifies(n))
		if err != nil {
			return nil, fmt.Errorf("plan %s: %w", n.ID(), err)
		}
		if look.hit {
			e.Action = ActionCached
			outputs[n.index] = look.action.Outputs
			entries = append(entries, e)
			continue
		}
		e.Action, e.Reason = ActionRun, look.reason
		if e.Reason == "" {
			e.Reason = explainMiss(opts.Store, refName(p.File, n.ID()), e.Key, ks)
		}
		if note := resumeNote(opts.Store, n, ks); note != "" {
			e.Reason += "; " + note
		}
		if mode == modeCacheOnly {
			return nil, fmt.Errorf("--only: %s is needed but not cached (%s); run it first or widen --only", n.ID(), e.Reason)
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// nodeMode says how Run treats an instance.
type nodeMode int

const (
	modeSkip      nodeMode = iota // not selected: not run, not looked up
	modeRun                       // run unless cached
	modeCacheOnly                 // needed by --only: must be a cache hit
)

type selection struct {
	mode   []nodeMode
	forced []string // per node: why it is forced ("--force", "--from x"), or ""
}

// selection applies --only, targets, --from and --force. Unknown decl ids
// are an error listing the known ones.
func (p *Pipeline) selection(opts Options) (*selection, error) {
	if len(opts.Only) > 0 && len(opts.Targets) > 0 {
		return nil, errors.New("--only and targets cannot be combined: --only already names what runs")
	}
	for _, list := range []struct {
		flag string
		ids  []string
	}{{"--only", opts.Only}, {"--from", opts.From}, {"target", opts.Targets}} {
		for _, id := range list.ids {
			if len(p.byDecl[id]) == 0 {
				return nil, fmt.Errorf("%s %q: no such stage (stages: %s)", list.flag, id, strings.Join(p.DeclIDs(), ", "))
			}
		}
	}
	s := &selection{mode: make([]nodeMode, len(p.Nodes)), forced: make([]string, len(p.Nodes))}
	switch {
	case len(opts.Only) > 0:
		for _, id := range opts.Only {
			for _, n := range p.byDecl[id] {
				s.mode[n.index] = modeRun
			}
		}
		// Producers of selected instances must come from the cache. Walk
		// backwards so that producers of producers are marked too.
		for i := len(p.Nodes) - 1; i >= 0; i-- {
			if s.mode[i] == modeSkip {
				continue
			}
			for _, from := range p.Nodes[i].Producers {
				if s.mode[from.index] == modeSkip {
					s.mode[from.index] = modeCacheOnly
				}
			}
		}
	case len(opts.Targets) > 0:
		for _, id := range opts.Targets {
			for _, n := range p.byDecl[id] {
				s.mode[n.index] = modeRun
			}
		}
		for i := len(p.Nodes) - 1; i >= 0; i-- {
			if s.mode[i] == modeRun {
				for _, from := range p.Nodes[i].Producers {
					s.mode[from.index] = modeRun
				}
			}
		}
	default:
		for i := range s.mode {
			s.mode[i] = modeRun
		}
	}
	for _, id := range opts.From {
		for _, n := range p.byDecl[id] {
			s.forced[n.index] = "--from " + id
		}
	}
	for _, n := range p.Nodes { // producers first, so forcing flows downstream
		if s.forced[n.index] != "" {
			continue
		}
		for _, from := range n.Producers {
			if s.forced[from.index] != "" {
				s.forced[n.index] = s.forced[from.index]
				break
			}
		}
	}
	for i := range s.forced {
		if s.mode[i] != modeRun {
			s.forced[i] = "" // a cache-only or skipped instance is never forced
		} else if opts.Force {
			s.forced[i] = "--force"
		}
	}
	return s, nil
}

// verifies says which output ports of n a cache lookup must re-hash.
func (o Options) verifies(n *Node) func(port string) bool {
	return func(port string) bool {
		if o.Verify {
			return true
		}
		if o.WillRead == nil {
			return false
		}
		for _, p := range n.Spec.Outputs {
			if p.Name == port {
				return o.WillRead(n, p)
			}
		}
		return false
	}
}

func outputPorts(n *Node) []string {
	ports := make([]string, 0, len(n.Spec.Outputs))
	for _, o := range n.Spec.Outputs {
		ports = append(ports, o.Name)
	}
	return ports
}
