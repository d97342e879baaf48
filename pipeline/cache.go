package pipeline

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// cacheLookup is the answer to "can this key be reused?".
type cacheLookup struct {
	hit    bool
	action *artifacts.Action // set on a hit
	reason string            // why not, on a miss ("" if no action is recorded)
}

// lookupCache reports a hit only when the action entry exists, names every
// declared output, and every object it names is present (re-hashed when
// verify says so for its port). A missing or corrupt object is a miss, never
// a reuse.
func lookupCache(store artifacts.Store, key string, outputs []string, verify func(port string) bool) (cacheLookup, error) {
	a, err := store.GetAction(key)
	switch {
	case errors.Is(err, artifacts.ErrNotFound):
		return cacheLookup{}, nil
	case errors.Is(err, artifacts.ErrCorrupt):
		return cacheLookup{reason: "action record corrupt"}, nil
	case err != nil:
		return cacheLookup{}, fmt.Errorf("read action %s: %w", key, err)
	}
	for _, port := range outputs {
		d, ok := a.Outputs[port]
		if !ok {
			return cacheLookup{reason: fmt.Sprintf("action has no output %q", port)}, nil
		}
		if !store.Has(d) {
			return cacheLookup{reason: "output object missing"}, nil
		}
		if verify(port) {
			err := store.Verify(d)
			switch {
			case errors.Is(err, artifacts.ErrCorrupt):
				return cacheLookup{reason: "output object corrupt"}, nil
			case errors.Is(err, artifacts.ErrNotFound):
				return cacheLookup{reason: "output object missing"}, nil
			case err != nil:
				return cacheLookup{}, fmt.Errorf("verify object %s: %w", d, err)
			}
		}
	}
	return cacheLookup{hit: true, action: a}, nil
}

// refName names the ref that remembers the last key an instance of a
// pipeline file had, so a miss can be explained against it.
func refName(pipelineFile, instance string) string { return pipelineFile + "#" + instance }

// explainMiss says why key is not in the cache, by diffing it against the
// action the same instance of the same pipeline file had last time.
func explainMiss(store artifacts.Store, ref string, key string, cur KeySpec) string {
	last, err := store.GetRef(ref)
	if err != nil || last == "" {
		return "not run before"
	}
	if last == key {
		return "cache entry missing"
	}
	prev, err := store.GetAction(last)
	if err != nil {
		return "previous cache entry gone"
	}
	var diffs []string
	if prev.Stage != cur.Stage {
		diffs = append(diffs, fmt.Sprintf("stage %s → %s", prev.Stage, cur.Stage))
	} else if prev.Version != cur.Version {
		diffs = append(diffs, fmt.Sprintf("stage %s %s → %s", cur.Stage, prev.Version, cur.Version))
	}
	names := unionKeys(prev.Params, cur.Params)
	for _, name := range names {
		before, hadBefore := prev.Params[name]
		after, hasAfter := cur.Params[name]
		b, a := showValue(before, hadBefore), showValue(after, hasAfter)
		if a != b {
			diffs = append(diffs, fmt.Sprintf("params.%s %s → %s", name, b, a))
		}
	}
	if prev.Seed != cur.Seed {
		diffs = append(diffs, fmt.Sprintf("seed %d → %d", prev.Seed, cur.Seed))
	}
	for _, port := range unionKeys(prev.Inputs, cur.Inputs) {
		if !slices.Equal(prev.Inputs[port], cur.Inputs[port]) {
			diffs = append(diffs, fmt.Sprintf("input %s changed", port))
		}
	}
	if len(diffs) == 0 {
		return "input tags changed"
	}
	return strings.Join(diffs, ", ")
}

// showValue renders a parameter value for a reason line: canonical JSON
// without quotes around plain strings, so that 60 read back from a JSON
// record and int64(60) look the same.
func showValue(v any, present bool) string {
	if !present {
		return "(unset)"
	}
	if s, ok := v.(string); ok {
		return s
	}
	b, err := CanonicalJSON(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func unionKeys[V any](a, b map[string]V) []string {
	seen := map[string]bool{}
	var keys []string
	for _, m := range []map[string]V{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	return keys
}
