package pipeline

import (
	"context"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/stages"
)

// neutralStage is a built-in stage with a key-neutral parameter.
type neutralStage struct{}

func (neutralStage) Spec() stages.Spec                      { return stages.Spec{Name: "key-neutral-test", Version: "1"} }
func (neutralStage) Run(context.Context, *stages.Env) error { return nil }
func (neutralStage) KeyNeutral() stages.Params {
	return stages.Params{"device": "cpu", "device_index": int64(0)}
}

func init() { stages.Builtin.Register(neutralStage{}) }

func TestKeyNeutralValuesLeftOutOfKey(t *testing.T) {
	key := func(stage string, ps stages.Params) string {
		t.Helper()
		k, err := CacheKey(KeySpec{Stage: stage, Version: "1", Params: ps, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	const st = "key-neutral-test"
	base := key(st, stages.Params{"lr": 0.1})
	given := stages.Params{"lr": 0.1, "device": "cpu", "device_index": int64(0)}
	if got := key(st, given); got != base {
		t.Errorf("the key-neutral values changed the key: %s, want %s", got, base)
	}
	if len(given) != 3 {
		t.Errorf("CacheKey changed its caller's params: %v", given)
	}
	doc, err := KeyDocument(KeySpec{Stage: st, Version: "1", Params: given, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"inputs":{},"params":{"lr":0.1},"seed":3,"stage":"key-neutral-test","version":"1"}`; string(doc) != want {
		t.Errorf("key document %s, want %s", doc, want)
	}
	for _, ps := range []stages.Params{
		{"lr": 0.1, "device": "cuda", "device_index": int64(0)},
		{"lr": 0.1, "device": "cpu", "device_index": int64(1)},
		{"lr": 0.1, "device": "cpu", "device_index": 0.0}, // a float is not the typed int 0
	} {
		if key(st, ps) == base {
			t.Errorf("%v has the key of the key-neutral values", ps)
		}
	}
	// A stage that is not built in (an exec plugin) keys all its params.
	if key("exec:./x", given) == key("exec:./x", stages.Params{"lr": 0.1}) {
		t.Error("an exec stage's device param was left out of its key")
	}
}
