package noise

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
	"github.com/sglr-pipe/sglr-pipe/stages/stagetest"
)

// testDataset builds n samples of k classes (label i mod k) with random-ish
// pixels strictly inside (0,1), named by names when given.
func testDataset(n, k int, names []string) *artifacts.Dataset {
	if names == nil {
		for c := range k {
			names = append(names, fmt.Sprintf("c%d", c))
		}
	}
	ds := &artifacts.Dataset{Shape: []int{1, 4, 4}, ClassNames: names, Meta: map[string]string{"source": "test"}}
	for i := range n {
		ds.Labels = append(ds.Labels, int32(i%k))
		ds.IDs = append(ds.IDs, int64(1000+i))
		for p := range 16 {
			ds.Images = append(ds.Images, float32((i*31+p*17)%97+1)/99)
		}
	}
	return ds
}

func labelConfig(kind string, rate float64) Config { return Config{Kind: kind, Rate: rate} }

func TestSymmetric(t *testing.T) {
	for _, tc := range []struct {
		n    int
		rate float64
	}{{1000, 0.2}, {1000, 0.45}, {333, 0.1}, {10, 1}, {50, 0}} {
		t.Run(fmt.Sprintf("n=%d rate=%v", tc.n, tc.rate), func(t *testing.T) {
			in := testDataset(tc.n, 10, nil)
			out, res, err := Apply(in, labelConfig(KindSymmetric, tc.rate), 7)
			if err != nil {
				t.Fatal(err)
			}
			want := int(math.Round(tc.rate * float64(tc.n)))
			if res.Flipped != want || res.LabelsChanged != want {
				t.Errorf("flipped %d changed %d, want exactly %d", res.Flipped, res.LabelsChanged, want)
			}
			if res.RealisedRate != float64(want)/float64(tc.n) || out.Meta["noise.realised_rate"] == "" {
				t.Errorf("realised rate %v, meta %v", res.RealisedRate, out.Meta)
			}
			for i := range out.Labels {
				if out.CleanLabels[i] != in.Labels[i] {
					t.Fatalf("clean label %d of sample %d is not the input label %d", out.CleanLabels[i], i, in.Labels[i])
				}
				if out.Flipped[i] != (out.Labels[i] != out.CleanLabels[i]) {
					t.Fatalf("flipped flag of sample %d wrong", i)
				}
			}
			if err := out.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSymmetricTargetsAreUniformOverOtherClasses(t *testing.T) {
	in := testDataset(10000, 4, nil)
	out, _, err := Apply(in, labelConfig(KindSymmetric, 0.6), 3)
	if err != nil {
		t.Fatal(err)
	}
	// Among flipped samples of class 0, each of classes 1..3 gets about a third.
	counts := make([]int, 4)
	for i, f := range out.Flipped {
		if f && in.Labels[i] == 0 {
			counts[out.Labels[i]]++
		}
	}
	total := counts[1] + counts[2] + counts[3]
	for c := 1; c < 4; c++ {
		if share := float64(counts[c]) / float64(total); math.Abs(share-1.0/3) > 0.05 {
			t.Errorf("class 0 flipped to %d in share %v, want about 1/3", c, share)
		}
	}
	if counts[0] != 0 {
		t.Errorf("%d flipped samples kept their label", counts[0])
	}
}

func TestUniform(t *testing.T) {
	in := testDataset(20000, 10, nil)
	out, res, err := Apply(in, labelConfig(KindUniform, 0.4), 11)
	if err != nil {
		t.Fatal(err)
	}
	want := 0.4 * 9 / 10
	if math.Abs(res.RealisedRate-want) > 0.01 {
		t.Errorf("realised rate %v, want about %v", res.RealisedRate, want)
	}
	if res.Flipped > 8000 || res.Flipped != countTrue(out.Flipped) {
		t.Errorf("flipped %d (flags %d)", res.Flipped, countTrue(out.Flipped))
	}
}

func TestAsymmetric(t *testing.T) {
	cifar := []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}
	fashion := []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
	cases := []struct {
		name    string
		classes []string
		raw     map[string]any
		want    map[int]int // expected source -> target
	}{
		{"cifar10 default", cifar, nil, map[int]int{9: 1, 2: 0, 4: 7, 3: 5, 5: 3}},
		{"fashion default", fashion, nil, map[int]int{0: 6, 6: 0, 2: 4, 7: 5}},
		{"digits default", []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}, nil, map[int]int{2: 7, 3: 8, 5: 6, 6: 5, 7: 1}},
		{"by name and index", cifar, map[string]any{"cat": "dog", "0": int64(8), "ship": 0.0}, map[int]int{3: 5, 0: 8, 8: 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			params := stages.Params{"kind": KindAsymmetric, "rate": 0.3, "sigma": 0.1, "fraction": 0.0, "map": tc.raw}
			if tc.raw == nil {
				params["map"] = map[string]any{}
			}
			cfg, err := ConfigFromParams(params, tc.classes)
			if err != nil {
				t.Fatal(err)
			}
			if !mapsEqual(cfg.Map, tc.want) {
				t.Fatalf("map %v, want %v", cfg.Map, tc.want)
			}
			in := testDataset(1000, 10, tc.classes)
			out, res, err := Apply(in, cfg, 5)
			if err != nil {
				t.Fatal(err)
			}
			moved := make([]int, 10)
			for i := range out.Labels {
				if out.Labels[i] == in.Labels[i] {
					continue
				}
				src := int(in.Labels[i])
				if dst, ok := tc.want[src]; !ok || int(out.Labels[i]) != dst {
					t.Fatalf("sample %d moved %d -> %d, not in the map", i, src, out.Labels[i])
				}
				moved[src]++
			}
			for src := range tc.want {
				if moved[src] != 30 { // round(0.3 * 100) of each mapped class
					t.Errorf("class %d: %d moved, want 30", src, moved[src])
				}
			}
			if res.Flipped != 30*len(tc.want) {
				t.Errorf("flipped %d", res.Flipped)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	names := []string{"a", "b", "c"}
	base := func(kind string) stages.Params {
		return stages.Params{"kind": kind, "rate": 0.0, "sigma": 0.1, "fraction": 0.0, "map": map[string]any{}}
	}
	with := func(p stages.Params, k string, v any) stages.Params { p[k] = v; return p }
	cases := []struct {
		name string
		p    stages.Params
		want string
	}{
		{"no default map", base(KindAsymmetric), "no default map"},
		{"unknown class", with(base(KindAsymmetric), "map", map[string]any{"z": "a"}), `no class named "z"`},
		{"index out of range", with(base(KindAsymmetric), "map", map[string]any{"a": int64(3)}), "outside 0..2"},
		{"to itself", with(base(KindAsymmetric), "map", map[string]any{"a": "0"}), "to itself"},
		{"rate with gaussian", with(base(KindGaussian), "rate", 0.2), "rate 0.2 has no effect"},
		{"fraction with symmetric", with(base(KindSymmetric), "fraction", 0.2), "fraction 0.2 has no effect"},
		{"map with symmetric", with(base(KindSymmetric), "map", map[string]any{"a": "b"}), "map has no effect"},
		{"rate with none", with(base(KindNone), "rate", 0.1), "no effect"},
		{"unknown kind", base("salt"), `kind "salt" unknown`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ConfigFromParams(tc.p, names)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestImageNoise(t *testing.T) {
	for _, tc := range []struct {
		kind     string
		fraction float64
	}{{KindGaussian, 0.3}, {KindGaussian, 1}, {KindRandomPixels, 0.25}, {KindRandomPixels, 0}} {
		t.Run(fmt.Sprintf("%s %v", tc.kind, tc.fraction), func(t *testing.T) {
			in := testDataset(200, 5, nil)
			orig := slices.Clone(in.Images)
			out, res, err := Apply(in, Config{Kind: tc.kind, Sigma: 0.5, Fraction: tc.fraction}, 9)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(in.Images, orig) {
				t.Fatal("input images modified")
			}
			changed := 0
			for i := range 200 {
				img, was := out.Images[i*16:(i+1)*16], orig[i*16:(i+1)*16]
				for _, v := range img {
					if v < 0 || v > 1 {
						t.Fatalf("pixel %v outside [0,1]", v)
					}
				}
				if !slices.Equal(img, was) {
					changed++
					if tc.kind == KindRandomPixels {
						a, b := slices.Clone(img), slices.Clone(was)
						slices.Sort(a)
						slices.Sort(b)
						if !slices.Equal(a, b) {
							t.Fatalf("image %d is not a permutation of the original", i)
						}
					}
				}
			}
			want := int(math.Round(tc.fraction * 200))
			if changed != want || res.ImagesCorrupted != want {
				t.Errorf("%d images changed (reported %d), want %d", changed, res.ImagesCorrupted, want)
			}
			if !slices.Equal(out.Labels, in.Labels) || res.Flipped != 0 {
				t.Error("image noise changed labels")
			}
		})
	}
}

func TestNoiseOverNoiseKeepsTruth(t *testing.T) {
	in := testDataset(500, 10, nil)
	first, _, err := Apply(in, labelConfig(KindSymmetric, 0.2), 1)
	if err != nil {
		t.Fatal(err)
	}
	second, res, err := Apply(first, labelConfig(KindSymmetric, 0.2), 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(second.CleanLabels, in.Labels) {
		t.Fatal("second pass lost the original clean labels")
	}
	if res.Flipped != countTrue(second.Flipped) || res.Flipped <= 100 {
		t.Errorf("flipped %d after two passes of 20%%", res.Flipped)
	}
}

func TestDeterminism(t *testing.T) {
	for _, cfg := range []Config{labelConfig(KindSymmetric, 0.3), labelConfig(KindUniform, 0.3), {Kind: KindGaussian, Sigma: 0.2, Fraction: 0.5}, {Kind: KindRandomPixels, Fraction: 0.5}} {
		in := testDataset(300, 10, nil)
		a, _, _ := Apply(in, cfg, 42)
		b, _, _ := Apply(in, cfg, 42)
		c, _, _ := Apply(in, cfg, 43)
		if !slices.Equal(a.Labels, b.Labels) || !slices.Equal(a.Images, b.Images) {
			t.Errorf("%s: same seed, different output", cfg.Kind)
		}
		if slices.Equal(a.Labels, c.Labels) && slices.Equal(a.Images, c.Images) {
			t.Errorf("%s: seeds 42 and 43 gave the same output", cfg.Kind)
		}
	}
}

func TestApplyRejectsBadDataset(t *testing.T) {
	in := testDataset(10, 3, nil)
	in.Labels[4] = 7
	if _, _, err := Apply(in, labelConfig(KindSymmetric, 0.5), 1); err == nil || !strings.Contains(err.Error(), "label 7") {
		t.Errorf("error %v", err)
	}
	one := testDataset(10, 1, nil)
	if _, _, err := Apply(one, labelConfig(KindSymmetric, 0.5), 1); err == nil {
		t.Error("symmetric noise on one class accepted")
	}
}

// runNoise runs the stage on in with a real Env and reads the output back.
func runNoise(t *testing.T, in *artifacts.Dataset, raw map[string]any, seed uint64) (*artifacts.Dataset, *stages.Env, error) {
	t.Helper()
	dir := t.TempDir()
	inPath := filepath.Join(dir, "in")
	var buf bytes.Buffer
	if err := artifacts.WriteDataset(&buf, in); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inPath, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	params, err := stages.DecodeParams(Stage{}.Spec(), raw)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	env := &stages.Env{
		Instance: "noisy", Params: params, Seed: seed, Progress: stages.NopProgress{}, OutDir: out,
		Inputs: map[string][]stages.Input{"dataset": {stagetest.Input(t, inPath, nil)}},
	}
	if err := (Stage{}).Run(context.Background(), env); err != nil {
		return nil, env, err
	}
	ds, err := artifacts.ReadDatasetFile(env.OutputPath("dataset"))
	if err != nil {
		t.Fatal(err)
	}
	return ds, env, nil
}

func TestStageRun(t *testing.T) {
	in := testDataset(400, 10, nil)
	out, env, err := runNoise(t, in, map[string]any{"kind": "symmetric", "rate": 0.25}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if countTrue(out.Flipped) != 100 || !slices.Equal(out.CleanLabels, in.Labels) || !slices.Equal(out.IDs, in.IDs) {
		t.Errorf("flipped %d", countTrue(out.Flipped))
	}
	if env.Summary()["realised_rate"] != 0.25 || out.Meta["noise.realised_rate"] != "0.25" || out.Meta["source"] != "test" {
		t.Errorf("summary %v meta %v", env.Summary(), out.Meta)
	}
	first, _ := os.ReadFile(env.OutputPath("dataset"))
	_, env2, err := runNoise(t, in, map[string]any{"kind": "symmetric", "rate": 0.25}, 5)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(env2.OutputPath("dataset"))
	if !bytes.Equal(first, second) {
		t.Error("same seed wrote different bytes")
	}

	if _, _, err := runNoise(t, in, map[string]any{"kind": "asymmetric", "rate": 0.25}, 5); err == nil ||
		!strings.HasPrefix(err.Error(), "asymmetric: no default map") {
		t.Errorf("asymmetric without map on unnamed classes: %v", err)
	}
}

func countTrue(b []bool) int {
	n := 0
	for _, v := range b {
		if v {
			n++
		}
	}
	return n
}

func mapsEqual(a, b map[int]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
