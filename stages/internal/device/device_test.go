package device_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/nn/cuda"
	"github.com/sglr-pipe/sglr-pipe/pipeline"
	"github.com/sglr-pipe/sglr-pipe/stages"
	"github.com/sglr-pipe/sglr-pipe/stages/eval"
	"github.com/sglr-pipe/sglr-pipe/stages/internal/device"
	"github.com/sglr-pipe/sglr-pipe/stages/refine"
	"github.com/sglr-pipe/sglr-pipe/stages/train"
)

// deviceStages are the stages that take `device`.
var deviceStages = []stages.Stage{train.Stage{}, eval.Stage{}, refine.Stage{}}

// noDriver makes device.Open fail as nn/cuda does on a machine without a
// driver, for the duration of the test.
func noDriver(t *testing.T) *cuda.LibraryError {
	t.Helper()
	lerr := &cuda.LibraryError{Lib: cuda.Driver, Tried: []string{"/nowhere/libcuda.so.1", "/nowhere/libcuda.so"}}
	stub(t, func(int) error { return lerr })
	return lerr
}

func stub(t *testing.T, open func(int) error) {
	t.Helper()
	saved := device.Open
	device.Open = open
	t.Cleanup(func() { device.Open = saved })
}

func TestRequireCPUNeedsNothing(t *testing.T) {
	stub(t, func(int) error { t.Fatal("device: cpu looked for a GPU"); return nil })
	if err := device.Require("train", stages.Params{"device": "cpu", "device_index": int64(0)}); err != nil {
		t.Fatal(err)
	}
}

func TestRequireCUDAWithoutDriverSaysWhatWasTried(t *testing.T) {
	lerr := noDriver(t)
	err := device.Require("train", stages.Params{"device": "cuda", "device_index": int64(1)})
	if err == nil {
		t.Fatal("device: cuda without a driver did not fail")
	}
	for _, want := range []string{"cuda:1", "no CUDA driver found", "train", "/nowhere/libcuda.so.1", "SGLR_CUDA_LIBS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	var got *cuda.LibraryError
	if !errors.As(err, &got) || got != lerr {
		t.Errorf("error does not wrap the *cuda.LibraryError: %v", err)
	}
}

func TestRequireCUDAWithDriverRefusesRatherThanRunOnCPU(t *testing.T) {
	var asked []int
	stub(t, func(i int) error { asked = append(asked, i); return nil })
	err := device.Require("eval", stages.Params{"device": "cuda", "device_index": int64(2)})
	if err == nil || !strings.Contains(err.Error(), "the CUDA backend does not run eval yet") || !strings.Contains(err.Error(), "cuda:2") {
		t.Fatalf("with a driver: %v, want the CUDA backend does not run eval yet", err)
	}
	if len(asked) != 1 || asked[0] != 2 {
		t.Errorf("opened devices %v, want [2]", asked)
	}
}

// TestStagesDeclareDevice checks each stage's declaration, that its
// key-neutral device values are exactly their defaults (other parameters may
// be neutral at another value: train's init at kaiming-normal), and that the defaults key as
// if the parameters did not exist while cuda does not.
func TestStagesDeclareDevice(t *testing.T) {
	for _, st := range deviceStages {
		spec := st.Spec()
		t.Run(spec.Name, func(t *testing.T) {
			defaults, err := stages.DecodeParams(spec, map[string]any{})
			if err != nil {
				t.Fatal(err)
			}
			if defaults.String("device") != device.CPU || defaults.Int("device_index") != 0 {
				t.Errorf("defaults device %q, device_index %d; want cpu, 0", defaults.String("device"), defaults.Int("device_index"))
			}
			kn, ok := st.(pipeline.KeyNeutralStage)
			if !ok {
				t.Fatal("does not implement pipeline.KeyNeutralStage")
			}
			neutral := kn.KeyNeutral()
			for _, name := range []string{"device", "device_index"} {
				if v := neutral[name]; defaults[name] != v {
					t.Errorf("key-neutral %s = %v (%T), default %v (%T)", name, v, v, defaults[name], defaults[name])
				}
			}
			if _, err := stages.DecodeParams(spec, map[string]any{"device": "gpu"}); err == nil {
				t.Error(`device: gpu was accepted`)
			}
			if _, err := stages.DecodeParams(spec, map[string]any{"device_index": -1}); err == nil {
				t.Error(`device_index: -1 was accepted`)
			}

			key := func(ps stages.Params) string {
				t.Helper()
				k, err := pipeline.CacheKey(pipeline.KeySpec{Stage: spec.Name, Version: spec.Version, Params: ps, Seed: 1})
				if err != nil {
					t.Fatal(err)
				}
				return k
			}
			before := stages.Params{}
			for name, v := range defaults {
				if name != "device" && name != "device_index" {
					before[name] = v
				}
			}
			if key(defaults) != key(before) {
				t.Error("device: cpu, device_index: 0 changed the cache key of the stage's defaults")
			}
			if len(defaults) != len(before)+2 {
				t.Error("CacheKey removed device or device_index from the caller's params")
			}
			cudaPs := stages.Params{}
			for name, v := range defaults {
				cudaPs[name] = v
			}
			cudaPs["device"] = device.CUDA
			if key(cudaPs) == key(defaults) {
				t.Error("device: cuda has the cache key of device: cpu")
			}
			cudaPs["device_index"] = int64(1)
			one := key(cudaPs)
			cudaPs["device_index"] = int64(0)
			if one == key(cudaPs) {
				t.Error("device_index 1 has the cache key of device_index 0")
			}
		})
	}
}

// TestStagesFailOnCUDABeforeReadingInputs runs each stage with device: cuda
// and no inputs at all: the device error must come first, and nothing may be
// written.
func TestStagesFailOnCUDABeforeReadingInputs(t *testing.T) {
	noDriver(t)
	for _, st := range deviceStages {
		spec := st.Spec()
		t.Run(spec.Name, func(t *testing.T) {
			ps, err := stages.DecodeParams(spec, map[string]any{"device": "cuda"})
			if err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			env := &stages.Env{Instance: spec.Name, Params: ps, Progress: stages.NopProgress{}, OutDir: out}
			err = st.Run(context.Background(), env)
			if err == nil || !strings.Contains(err.Error(), "no CUDA driver found, so "+spec.Name+" cannot run") {
				t.Fatalf("Run with device: cuda: %v", err)
			}
			if files, _ := os.ReadDir(out); len(files) > 0 {
				t.Errorf("Run wrote %d files before failing", len(files))
			}
		})
	}
}
