package pipeline

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"reflect"
	"strconv"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// KeySpec is everything that determines what a stage instance produces. Two
// instances with equal KeySpecs are interchangeable, so their outputs are
// cached under the same key.
type KeySpec struct {
	Stage   string                         // the stage type as written in `uses:` ("noise", "exec:./x")
	Version string                         // the stage's version string
	Params  map[string]any                 // validated params with defaults filled
	Seed    uint64                         // the instance's derived seed
	Inputs  map[string][]artifacts.Digest  // port -> content digests, in edge order
	Tags    map[string][]map[string]string // port -> per-artifact axis tags (gathered inputs); may be nil
}

// CacheKey returns the 64-hex sha256 of the canonical JSON of
// {inputs, params, seed, stage, version}, params less the stage's key-neutral
// values (see KeyNeutralStage). Gathered inputs carry matrix tags
// that a stage may read (a report labels its rows with them), so when any
// input has tags they enter the key too, under "input_tags"; without tags the
// document is exactly the five fields.
func CacheKey(k KeySpec) (string, error) {
	doc, err := KeyDocument(k)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(doc)
	return hex.EncodeToString(sum[:]), nil
}

// KeyDocument returns the canonical JSON text that CacheKey hashes, so that a
// key can be explained and checked by hand.
func KeyDocument(k KeySpec) ([]byte, error) {
	params := keyParams(k.Stage, k.Params)
	inputs := k.Inputs
	if inputs == nil {
		inputs = map[string][]artifacts.Digest{}
	}
	doc := map[string]any{
		"stage":   k.Stage,
		"version": k.Version,
		"params":  params,
		"seed":    k.Seed,
		"inputs":  inputs,
	}
	if hasTags(k.Tags) {
		doc["input_tags"] = k.Tags
	}
	b, err := CanonicalJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("cache key of stage %s: %w", k.Stage, err)
	}
	return b, nil
}

// KeyNeutralStage is implemented by a built-in stage that gained a parameter
// after its cache keys were in use, where one value of the parameter computes
// exactly what the stage computed before it existed (train, eval and refine:
// `device: cpu` and `device_index: 0`). KeyNeutral returns those values; a
// parameter whose typed value equals its key-neutral value is left out of the
// key document, so existing stores stay cached and writing the value out
// keys the same as leaving it to the default. Any other value is keyed as
// usual, since it may change the results.
//
// The rule is looked up by the key's own Stage in stages.Builtin, so that
// every place that computes a key (plan, run, replay, a NATS coordinator and
// its workers) applies it without passing the stage along. Exec stages
// (`exec:./x`) are never in Builtin: their keys are all their params.
type KeyNeutralStage interface {
	KeyNeutral() stages.Params
}

// keyParams is params as they enter the key of stage: without the values
// the stage declares key-neutral and the parameters it declares key-ignored
// (KeyIgnoredStage), copied so that params is not changed; nil is the empty
// map.
func keyParams(stage string, params map[string]any) map[string]any {
	if params == nil {
		return map[string]any{}
	}
	st, ok := stages.Builtin.Lookup(stage)
	if !ok {
		return params
	}
	var out map[string]any
	drop := func(name string) {
		if out == nil {
			out = maps.Clone(params)
		}
		delete(out, name)
	}
	if kn, ok := st.(KeyNeutralStage); ok {
		for name, neutral := range kn.KeyNeutral() {
			if v, given := params[name]; given && reflect.DeepEqual(v, neutral) {
				drop(name)
			}
		}
	}
	if ki, ok := st.(KeyIgnoredStage); ok {
		for _, name := range ki.KeyIgnored() {
			if _, given := params[name]; given {
				drop(name)
			}
		}
	}
	if out == nil {
		return params
	}
	return out
}

// DeriveSeed gives each instance its own seed from the pipeline's root seed
// and the instance id: the first 8 bytes (big-endian) of
// sha256("sglr-seed\x00<root in decimal>\x00<id>"). Renaming an instance or
// changing the root seed changes its seed; nothing else does.
func DeriveSeed(root uint64, instanceID string) uint64 {
	h := sha256.New()
	h.Write([]byte("sglr-seed\x00"))
	h.Write([]byte(strconv.FormatUint(root, 10)))
	h.Write([]byte{0})
	h.Write([]byte(instanceID))
	return binary.BigEndian.Uint64(h.Sum(nil)[:8])
}

func hasTags(tags map[string][]map[string]string) bool {
	for _, list := range tags {
		for _, t := range list {
			if len(t) > 0 {
				return true
			}
		}
	}
	return false
}
