package artifacts

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// pythonWith returns /usr/bin/python3 when it imports every module, and
// skips the test otherwise.
func pythonWith(t *testing.T, modules ...string) string {
	t.Helper()
	const python = "/usr/bin/python3"
	for _, m := range modules {
		if err := exec.Command(python, "-c", "import "+m).Run(); err != nil {
			t.Skipf("%s cannot import %s (%v); install python3-%s to run this test", python, m, err, m)
		}
	}
	return python
}

// readNPZ reads an .npz archive with archive/zip and the test's own .npy
// parser, returning the entry names in archive order and the arrays.
func readNPZ(t *testing.T, data []byte) ([]string, map[string]npyArray) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("not a zip archive: %v", err)
	}
	var names []string
	arrays := map[string]npyArray{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		raw, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		a, err := parseNPY(raw)
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		names = append(names, f.Name)
		arrays[f.Name] = a
	}
	return names, arrays
}

func exportNPZBytes(t *testing.T, m *Model) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := ExportNPZ(bytes.NewReader(encodeModel(t, m)), &out); err != nil {
		t.Fatalf("ExportNPZ: %v", err)
	}
	return out.Bytes()
}

func TestExportNPZ(t *testing.T) {
	m := sampleModel()
	data := exportNPZBytes(t, m)
	if again := exportNPZBytes(t, sampleModel()); !bytes.Equal(again, data) {
		t.Error("two exports of the same model differ")
	}

	names, arrays := readNPZ(t, data)
	want := map[string]npyArray{}
	var wantNames []string
	for _, tensor := range m.Tensors {
		name := tensor.Name + ".npy"
		wantNames = append(wantNames, name)
		want[name] = npyArray{descr: "<f4", shape: tensor.Shape, values: toFloat64s(tensor.Data)}
	}
	// PyTorch keeps the BatchNorm counter as an int64 scalar.
	want["bn.num_batches_tracked.npy"] = npyArray{descr: "<i8", shape: nil, values: []float64{7}}
	// The architecture follows the tensors, as the uint8 bytes of its JSON.
	archEntry := NPZArchKey + ".npy"
	wantNames = append(wantNames, archEntry)
	want[archEntry] = npyArray{descr: "|u1", shape: []int{len(m.Arch)}, values: toFloat64s([]byte(m.Arch))}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("entries %v, want %v", names, wantNames)
	}
	for name, w := range want {
		got := arrays[name]
		if len(w.shape) == 0 {
			w.shape = nil // parseNPY leaves a scalar's shape nil
		}
		if got.descr != w.descr || !reflect.DeepEqual(got.shape, w.shape) || !reflect.DeepEqual(got.values, w.values) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, w)
		}
	}

	t.Run("numpy", func(t *testing.T) {
		python := pythonWith(t, "numpy")
		path := filepath.Join(t.TempDir(), "model.npz")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		script := `import json, sys, numpy as np
with np.load(sys.argv[1], allow_pickle=False) as z:
    out = {k: {"descr": z[k].dtype.str, "shape": list(z[k].shape), "values": z[k].ravel().tolist()} for k in z.files}
    out["arch text"] = {"text": z["` + NPZArchKey + `"].tobytes().decode("utf-8")}
print(json.dumps(out))`
		raw, err := exec.Command(python, "-c", script, path).Output()
		if err != nil {
			t.Fatalf("numpy could not load the archive: %v", err)
		}
		var got map[string]struct {
			Descr  string
			Shape  []int
			Values []float64
			Text   string
		}
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		if text := got["arch text"].Text; text != m.Arch {
			t.Errorf("numpy decodes %s as %q, want %q", NPZArchKey, text, m.Arch)
		}
		delete(got, "arch text")
		if len(got) != len(want) {
			t.Errorf("numpy sees %d arrays, want %d", len(got), len(want))
		}
		for name, w := range want {
			g := got[strings.TrimSuffix(name, ".npy")]
			if g.Descr != w.descr || len(g.Shape) != len(w.shape) || (len(w.shape) > 0 && !reflect.DeepEqual(g.Shape, w.shape)) ||
				!reflect.DeepEqual(g.Values, w.values) {
				t.Errorf("numpy sees %s as %+v, want %+v", name, g, w)
			}
		}
	})
}

func TestExportNPZErrors(t *testing.T) {
	counter := func(v float32) []byte {
		m := sampleModel()
		m.Tensor("bn.num_batches_tracked").Data[0] = v
		return encodeModel(t, m)
	}
	reserved := sampleModel()
	reserved.Tensors[0].Name = NPZArchKey
	tests := []struct {
		name    string
		data    []byte
		corrupt bool
		want    string
	}{
		{"a dataset", encodeDataset(t, sampleDataset(2, false)), true, `kind is "dataset", want "model"`},
		{"garbage", []byte("PK\x03\x04 not arrow"), true, "not an Arrow IPC file"},
		{"fractional counter", counter(1.5), false, `tensor "bn.num_batches_tracked": value 1.5`},
		{"negative counter", counter(-2), false, "non-negative integer"},
		{"reserved tensor name", encodeModel(t, reserved), false, `tensor "__arch__.json": names beginning with "__" are reserved`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ExportNPZ(bytes.NewReader(tt.data), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) || errors.Is(err, ErrCorrupt) != tt.corrupt {
				t.Errorf("error %v, want one containing %q (ErrCorrupt: %v)", err, tt.want, tt.corrupt)
			}
		})
	}
}

// TestExportNPZLoadsIntoTorch builds, for each architecture, a model with
// the exact state_dict layout of bench/torch_models.py, exports it, and
// reads the archive back with torch_models.read_npz: the architecture must
// be the artifact's, and the tensors must load into the module it builds
// with load_state_dict(strict=True), dtypes and values unchanged. (Two
// Python runs in all: importing torch takes a second.)
func TestExportNPZLoadsIntoTorch(t *testing.T) {
	python := pythonWith(t, "numpy", "torch")
	bench, err := filepath.Abs(filepath.Join("..", "bench"))
	if err != nil {
		t.Fatal(err)
	}
	archs := []string{
		`{"kind":"mlp","input":[1,4,4],"classes":3,"hidden":[5,4]}`,
		`{"kind":"cnn","input":[2,8,8],"classes":3,"channels":[3,4],"hidden":[6]}`,
		`{"kind":"preact-resnet18","input":[3,32,32],"classes":10,"width":2}`,
	}
	layoutScript := `import json, sys
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[1])
from torch_models import build, state_layout
print(json.dumps([[{"name": n, "shape": s, "buffer": b} for n, s, b, _ in state_layout(build(json.loads(a)))]
                  for a in sys.argv[2:]]))`
	raw, err := exec.Command(python, append([]string{"-c", layoutScript, bench}, archs...)...).Output()
	if err != nil {
		t.Fatalf("state_dict layouts from torch_models.py: %v", err)
	}
	var layouts [][]struct {
		Name   string
		Shape  []int
		Buffer bool
	}
	if err := json.Unmarshal(raw, &layouts); err != nil || len(layouts) != len(archs) {
		t.Fatalf("layouts %s: %v", raw, err)
	}

	args := []string{"-c", "", bench}
	counts := map[string]int{}
	for a, arch := range archs {
		m := &Model{Arch: arch}
		for i, l := range layouts[a] {
			tensor := Tensor{Name: l.Name, Shape: l.Shape, Buffer: l.Buffer}
			tensor.Data = make([]float32, tensor.Numel())
			for j := range tensor.Data {
				tensor.Data[j] = float32((i*7919+j*104729)%2001-1000) / 1024
			}
			if isBatchCounter(l.Name) {
				tensor.Data[0] = float32(i)
			}
			m.Tensors = append(m.Tensors, tensor)
		}
		path := filepath.Join(t.TempDir(), "model.npz")
		if err := os.WriteFile(path, exportNPZBytes(t, m), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, arch, path)
		counts[arch] = len(m.Tensors)
	}
	args[1] = `import json, sys
import numpy as np, torch
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[1])
from torch_models import build, read_npz
loaded = {}
for arch, path in zip(sys.argv[2::2], sys.argv[3::2]):
    stored, sd = read_npz(path)
    assert stored == json.loads(arch), (stored, arch)
    model = build(stored)
    before = {k: v.dtype for k, v in model.state_dict().items()}
    model.load_state_dict(sd, strict=True)
    for k, v in model.state_dict().items():
        assert v.dtype == before[k] == sd[k].dtype, (arch, k, v.dtype, before[k], sd[k].dtype)
        assert torch.equal(v, sd[k]), (arch, k)
    loaded[arch] = len(sd)
print(json.dumps(loaded))`
	out, err := exec.Command(python, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("loading the exports into PyTorch failed: %v\n%s", err, out)
	}
	var loaded map[string]int
	if err := json.Unmarshal(out, &loaded); err != nil || !reflect.DeepEqual(loaded, counts) {
		t.Errorf("PyTorch loaded %s (%v), want tensor counts %v", out, err, counts)
	}
}
