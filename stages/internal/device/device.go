// Package device is the `device` and `device_index` parameters that the
// train, eval and refine stages share, and what each does when the stage
// starts.
//
// The CUDA backend of issue 14 is not usable yet: library discovery and the
// driver bindings exist (package nn/cuda), but no stage computes on the GPU.
// So `device: cuda` is accepted by the schema (a pipeline meant for a GPU
// worker plans anywhere) and fails the stage when it runs: with the paths
// that were searched when there is no CUDA driver, and with "the CUDA
// backend does not run <stage> yet" when there is one. It never falls back
// to the CPU silently, since a run that asked for the GPU would then record
// CPU results under a cuda cache key.
//
// The package is internal so that exec plugins, which import package
// stages, do not link nn/cuda.
package device

import (
	"fmt"

	"github.com/sglr-pipe/sglr-pipe/nn/cuda"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// The values of the device parameter.
const (
	CPU  = "cpu"
	CUDA = "cuda"
)

// Params declares `device` and `device_index` for a stage: the stage's
// name appears in the docs, which `sglr-pipe stages` prints.
func Params(stage string) []stages.Param {
	return []stages.Param{
		{Name: "device", Type: stages.TypeString, Default: CPU, Enum: []string{CPU, CUDA},
			Doc: "where " + stage + " computes: cpu, or cuda (not usable yet: the stage fails with what was looked for, " +
				"never runs on the CPU instead); cpu, the default, is left out of the cache key, so keys of pipelines " +
				"written before this parameter are unchanged"},
		{Name: "device_index", Type: stages.TypeInt, Default: int64(0), Min: stages.Float(0), Max: stages.Float(1023),
			Doc: "device: cuda: which GPU, as CUDA numbers them (0, the default, is left out of the cache key)"},
	}
}

// KeyNeutral is the values of the device parameters that reproduce what the
// stages computed before the parameters existed, and that the cache key
// therefore leaves out (see pipeline.KeyNeutralStage): existing stores stay
// cached, and `device: cpu` written out keys the same as leaving it unset.
// Every other value, `device: cuda` or a device_index above 0, is part of
// the key, since results on a GPU may differ from the CPU's in the last bits.
func KeyNeutral() stages.Params {
	return stages.Params{"device": CPU, "device_index": int64(0)}
}

// Open reaches GPU index and returns nil when it could run there, or an
// error saying why not (no CUDA driver: every path tried). It is a variable
// so that tests can stand in a machine with a driver; it finds the driver
// library with nn/cuda's discovery, which opens nothing. When the backend
// computes on the GPU, this becomes cuda.Open.
var Open = func(index int) error {
	_, err := cuda.Find(cuda.Driver)
	return err
}

// Require checks, when stage starts, that it can compute on the device its
// params name: nil for cpu; for cuda, an error naming the device and the
// stage (the run prefixes the instance id), either that no CUDA driver was found (with the paths tried) or,
// where a driver is present, that the CUDA backend does not run the stage
// yet. Stages call it before reading any input, so a failure costs nothing
// and stores nothing.
func Require(stage string, ps stages.Params) error {
	dev := ps.String("device")
	if dev == "" || dev == CPU {
		return nil
	}
	if dev != CUDA {
		return fmt.Errorf("device %q is not one of %q, %q, so %s cannot run", dev, CPU, CUDA, stage)
	}
	index := int(ps.Int("device_index"))
	if err := Open(index); err != nil {
		return fmt.Errorf("device cuda:%d: no CUDA driver found, so %s cannot run on the GPU (use device: cpu, or run it on a machine with an NVIDIA driver): %w",
			index, stage, err)
	}
	return fmt.Errorf("device cuda:%d: a CUDA driver is present, but the CUDA backend does not run %s yet "+
		"(the GPU kernels are not wired into the stages, issue 14); use device: cpu", index, stage)
}
