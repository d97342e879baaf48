package pipeline

import (
	"context"
	"fmt"
	"strings"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// ReplayResult compares a recorded execution with a fresh one.
type ReplayResult struct {
	Instance string         `json:"instance"`
	Key      string         `json:"key"`
	Outputs  []ReplayOutput `json:"outputs"`
}

// ReplayOutput compares one output port.
type ReplayOutput struct {
	Port      string           `json:"port"`
	Recorded  artifacts.Digest `json:"recorded"`
	Replayed  artifacts.Digest `json:"replayed"`
	Identical bool             `json:"identical"`
}

// Identical reports whether every output was reproduced bit for bit.
func (r *ReplayResult) Identical() bool {
	for _, o := range r.Outputs {
		if !o.Identical {
			return false
		}
	}
	return true
}

// Replay re-executes one instance of a recorded run with the recorded
// params, seed and inputs, stores the replayed outputs, and compares their
// digests with the recorded ones. runID may be "latest"; instance is an
// instance id, or a declaration id that has a single instance in the run.
// exec nil means LocalExecutor.
func Replay(ctx context.Context, store artifacts.Store, resolve Resolver, runID, instance string, exec Executor) (*ReplayResult, error) {
	run, err := store.GetRun(runID)
	if err != nil {
		return nil, fmt.Errorf("replay: run %s: %w", runID, err)
	}
	ri, err := findRunInstance(run, instance)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	if ri.Key == "" {
		return nil, fmt.Errorf("replay: %s was %s in run %s and has no recorded action", ri.ID, ri.Status, run.ID)
	}
	action, err := store.GetAction(ri.Key)
	if err != nil {
		return nil, fmt.Errorf("replay %s: action %s: %w", ri.ID, ri.Key, err)
	}
	stage, err := resolve(action.Stage)
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", ri.ID, err)
	}
	spec := stage.Spec()
	if spec.Version != action.Version {
		return nil, fmt.Errorf("replay %s: stage %s is now version %s but the action was recorded with %s; replay needs the same version",
			ri.ID, action.Stage, spec.Version, action.Version)
	}
	params, err := typedParams(spec, action.Params)
	if err != nil {
		return nil, fmt.Errorf("replay %s: recorded params: %w", ri.ID, err)
	}
	tags := action.InputTags
	// The recorded fields must give back the recorded key; otherwise something
	// was lost on the way through the record and the replay would not be the
	// same computation.
	ks := KeySpec{Stage: action.Stage, Version: spec.Version, Params: params, Seed: action.Seed, Inputs: action.Inputs, Tags: tags}
	key, err := CacheKey(ks)
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", ri.ID, err)
	}
	if key != ri.Key {
		return nil, fmt.Errorf("replay %s: the recorded action does not reproduce its key %s (got %s)", ri.ID, ri.Key, key)
	}
	inputs := map[string][]stages.Input{}
	for port, digests := range action.Inputs {
		for i, d := range digests {
			path, err := store.Path(d)
			if err != nil {
				return nil, fmt.Errorf("replay %s: input %s object %s is no longer in the store (re-run the pipeline to rebuild it): %w", ri.ID, port, d, err)
			}
			in := stages.Input{Digest: d, Path: path}
			if i < len(tags[port]) {
				in.Tags = tags[port][i]
			}
			inputs[port] = append(inputs[port], in)
		}
	}
	if exec == nil {
		exec = LocalExecutor{}
	}
	res, err := exec.Execute(ctx, &Task{
		Instance: ri.ID, Stage: stage, Params: params, Seed: action.Seed,
		Inputs: inputs, Progress: stages.NopProgress{}, Store: store,
	})
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", ri.ID, err)
	}
	out := &ReplayResult{Instance: ri.ID, Key: ri.Key}
	for _, port := range spec.Outputs {
		rec, replayed := action.Outputs[port.Name], res.Outputs[port.Name]
		out.Outputs = append(out.Outputs, ReplayOutput{Port: port.Name, Recorded: rec, Replayed: replayed, Identical: rec == replayed && rec != ""})
	}
	return out, nil
}

// findRunInstance looks instance up by instance id, then by declaration id
// when that declaration has a single instance in the run.
func findRunInstance(run *artifacts.Run, instance string) (*artifacts.RunInstance, error) {
	var byDecl []*artifacts.RunInstance
	for i := range run.Instances {
		ri := &run.Instances[i]
		if ri.ID == instance {
			return ri, nil
		}
		if ri.Stage == instance {
			byDecl = append(byDecl, ri)
		}
	}
	switch len(byDecl) {
	case 1:
		return byDecl[0], nil
	case 0:
		ids := make([]string, 0, len(run.Instances))
		for _, ri := range run.Instances {
			ids = append(ids, ri.ID)
		}
		return nil, fmt.Errorf("run %s has no instance %q (instances: %s)", run.ID, instance, strings.Join(ids, ", "))
	default:
		ids := make([]string, 0, len(byDecl))
		for _, ri := range byDecl {
			ids = append(ids, ri.ID)
		}
		return nil, fmt.Errorf("stage %q has %d instances in run %s; name one: %s", instance, len(byDecl), run.ID, strings.Join(ids, ", "))
	}
}
