package natsexec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/pipeline"
	"github.com/sglr-pipe/sglr-pipe/stages"
	"github.com/sglr-pipe/sglr-pipe/stages/param"
)

// protocolVersion is the version of the messages below; a worker refuses a
// task of another version with a message saying so.
const protocolVersion = 1

// taskMessage is one stage instance on the work queue: everything a worker
// needs to run it and nothing that only the coordinator's machine has.
type taskMessage struct {
	Protocol int    `json:"protocol"`
	Run      string `json:"run"`  // the coordinator's run token: results and progress go under it
	Task     string `json:"task"` // unique per submission
	Instance string `json:"instance"`
	Uses     string `json:"uses"`    // as written in `uses:` ("noise", "exec:./plugin")
	Version  string `json:"version"` // the stage version the coordinator planned with
	// ExecPath is the absolute path of an exec: stage's executable as the
	// coordinator resolved it; the worker runs it only if its allowlist says so.
	ExecPath string                `json:"exec_path,omitempty"`
	Params   map[string]paramValue `json:"params"`
	Seed     uint64                `json:"seed"`
	Inputs   map[string][]inputRef `json:"inputs,omitempty"`
	Labels   []string              `json:"labels,omitempty"` // required worker labels, sorted
	Cores    int                   `json:"cores"`
	// Key is the instance's cache key as the coordinator computed it from the
	// fields above; the worker recomputes it to prove nothing changed in transit.
	Key string `json:"key"`
}

// inputRef is one input artifact by digest, with its matrix tags.
type inputRef struct {
	Digest artifacts.Digest  `json:"digest"`
	Tags   map[string]string `json:"tags,omitempty"`
}

// resultMessage is what a worker reports for a task: outputs or an error.
type resultMessage struct {
	Task    string                      `json:"task"`
	Worker  string                      `json:"worker"`
	Outputs map[string]artifacts.Digest `json:"outputs,omitempty"`
	Summary map[string]any              `json:"summary,omitempty"`
	Seconds float64                     `json:"seconds"`
	Error   string                      `json:"error,omitempty"`
}

// progressMessage is one progress report from the worker running a task.
type progressMessage struct {
	Worker  string `json:"worker"`
	Kind    string `json:"kind"` // progressStarted, progressBar or progressStatus
	Done    int64  `json:"done,omitempty"`
	Total   int64  `json:"total,omitempty"`
	Unit    string `json:"unit,omitempty"`
	Message string `json:"message,omitempty"`
}

// Kinds of progressMessage.
const (
	progressStarted = "started" // a worker took the task
	progressBar     = "progress"
	progressStatus  = "status"
)

// paramValue carries one parameter value with its Go type, so that a worker
// sees exactly the values the coordinator keyed the instance with: int64
// stays int64, an integral float64 stays float64 (also inside lists), and
// floats travel as shortest round-trip text, NaN and infinities included.
type paramValue struct {
	Type   string                `json:"t"`
	Int    int64                 `json:"i,omitempty"`
	Float  string                `json:"f,omitempty"`
	String string                `json:"s,omitempty"`
	Bool   bool                  `json:"b,omitempty"`
	List   []paramValue          `json:"l,omitempty"`
	Map    map[string]paramValue `json:"m,omitempty"`
}

// Type tags of paramValue.
const (
	pvInt    = "int"
	pvFloat  = "float"
	pvString = "string"
	pvBool   = "bool"
	pvList   = "list"
	pvMap    = "map"
)

// encodeParams converts validated params to their wire form.
func encodeParams(params stages.Params) (map[string]paramValue, error) {
	out := make(map[string]paramValue, len(params))
	for name, v := range params {
		pv, err := encodeValue(v)
		if err != nil {
			return nil, fmt.Errorf("param %q: %w", name, err)
		}
		out[name] = pv
	}
	return out, nil
}

func encodeValue(v any) (paramValue, error) {
	switch x := v.(type) {
	case int64:
		return paramValue{Type: pvInt, Int: x}, nil
	case int:
		return paramValue{Type: pvInt, Int: int64(x)}, nil
	case float64:
		return paramValue{Type: pvFloat, Float: strconv.FormatFloat(x, 'g', -1, 64)}, nil
	case string:
		return paramValue{Type: pvString, String: x}, nil
	case bool:
		return paramValue{Type: pvBool, Bool: x}, nil
	case []any:
		list := make([]paramValue, len(x))
		for i, e := range x {
			pv, err := encodeValue(e)
			if err != nil {
				return paramValue{}, fmt.Errorf("element %d: %w", i, err)
			}
			list[i] = pv
		}
		return paramValue{Type: pvList, List: list}, nil
	case map[string]any:
		m := make(map[string]paramValue, len(x))
		for k, e := range x {
			pv, err := encodeValue(e)
			if err != nil {
				return paramValue{}, fmt.Errorf("key %q: %w", k, err)
			}
			m[k] = pv
		}
		return paramValue{Type: pvMap, Map: m}, nil
	default:
		return paramValue{}, fmt.Errorf("cannot send a value of type %T", v)
	}
}

// decodeParams converts wire params back to the values encodeParams was given.
func decodeParams(wire map[string]paramValue) (stages.Params, error) {
	out := make(stages.Params, len(wire))
	for name, pv := range wire {
		v, err := decodeValue(pv)
		if err != nil {
			return nil, fmt.Errorf("param %q: %w", name, err)
		}
		out[name] = v
	}
	return out, nil
}

func decodeValue(pv paramValue) (any, error) {
	switch pv.Type {
	case pvInt:
		return pv.Int, nil
	case pvFloat:
		f, err := strconv.ParseFloat(pv.Float, 64)
		if err != nil {
			return nil, fmt.Errorf("float %q: %w", pv.Float, err)
		}
		return f, nil
	case pvString:
		return pv.String, nil
	case pvBool:
		return pv.Bool, nil
	case pvList:
		list := make([]any, len(pv.List))
		for i, e := range pv.List {
			v, err := decodeValue(e)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			list[i] = v
		}
		return list, nil
	case pvMap:
		m := make(map[string]any, len(pv.Map))
		for k, e := range pv.Map {
			v, err := decodeValue(e)
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", k, err)
			}
			m[k] = v
		}
		return m, nil
	default:
		return nil, fmt.Errorf("unknown value type %q", pv.Type)
	}
}

// keyOf computes the cache key of a task from its own fields, as the
// scheduler computes it from the pipeline.
func keyOf(uses, version string, params stages.Params, seed uint64, inputs map[string][]inputRef) (string, error) {
	ks := pipeline.KeySpec{
		Stage: uses, Version: version, Params: params, Seed: seed,
		Inputs: map[string][]artifacts.Digest{}, Tags: map[string][]map[string]string{},
	}
	for _, port := range slices.Sorted(maps.Keys(inputs)) {
		for _, in := range inputs[port] {
			ks.Inputs[port] = append(ks.Inputs[port], in.Digest)
			ks.Tags[port] = append(ks.Tags[port], in.Tags)
		}
	}
	return pipeline.CacheKey(ks)
}

// decodeTask decodes and checks a task message.
func decodeTask(data []byte) (*taskMessage, stages.Params, error) {
	var t taskMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return nil, nil, fmt.Errorf("decode task: %w", err)
	}
	if t.Protocol != protocolVersion {
		return &t, nil, fmt.Errorf("task speaks protocol %d, this worker speaks %d: run the same sglr-pipe version on the coordinator and the workers",
			t.Protocol, protocolVersion)
	}
	if t.Run == "" || t.Task == "" || t.Instance == "" || t.Uses == "" {
		return &t, nil, errors.New("task lacks its run, task, instance or stage")
	}
	params, err := decodeParams(t.Params)
	if err != nil {
		return &t, nil, fmt.Errorf("%s: %w", t.Instance, err)
	}
	key, err := keyOf(t.Uses, t.Version, params, t.Seed, t.Inputs)
	if err != nil {
		return &t, nil, fmt.Errorf("%s: %w", t.Instance, err)
	}
	if key != t.Key {
		return &t, nil, fmt.Errorf("%s: the task arrived altered: its fields hash to key %s, the coordinator sent %s", t.Instance, key, t.Key)
	}
	return &t, params, nil
}

// checkParams checks a task's decoded params against the spec of the stage
// that will run them with param.Check, the typer the DSL uses: a task's key
// proves only that it was not altered on the way, not that whoever made it
// validated it, and a stage's accessors panic on a value of the wrong type.
func checkParams(spec stages.Spec, params stages.Params) error {
	return param.Join(param.Check(spec.Params, params))
}
