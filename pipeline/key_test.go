package pipeline

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

func TestCanonicalJSON(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"null", nil, `null`},
		{"bools", []any{true, false}, `[true,false]`},
		{"ints", []any{int64(-9223372036854775808), 0, uint64(18446744073709551615), int32(7)}, `[-9223372036854775808,0,18446744073709551615,7]`},
		{"floats shortest", []any{0.1, 100.0, 1e21, 1.5e-7, -2.5, math.Copysign(0, -1)}, `[0.1,100,1e+21,1.5e-07,-2.5,0]`},
		{"float32 shortest", float32(0.1), `0.1`},
		{"json.Number", []any{json.Number("60"), json.Number("0.25")}, `[60,0.25]`},
		{"string escapes", "a\"b\\c\n\t\x01\b\f\r<>&é", `"a\"b\\c\n\t\u0001\b\f\r<>&é"`},
		{"keys sorted bytewise", map[string]any{"b": 1, "a": 2, "é": 3, "Z": 4}, `{"Z":4,"a":2,"b":1,"é":3}`},
		{"nested", map[string]any{"m": map[string]any{"y": []any{"x", nil}, "x": map[string]string{}}}, `{"m":{"x":{},"y":["x",null]}}`},
		{"nil slice is empty list", []string(nil), `[]`},
		{"nil map is empty object", map[string]string(nil), `{}`},
		{"named string", artifacts.Digest("ab"), `"ab"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CanonicalJSON(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if !json.Valid(got) {
				t.Errorf("%s is not valid JSON", got)
			}
		})
	}
}

func TestCanonicalJSONRejects(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"NaN", map[string]any{"rate": math.NaN()}, "$.rate: NaN"},
		{"+Inf", []any{math.Inf(1)}, "$[0]: +Inf"},
		{"-Inf", math.Inf(-1), "-Inf"},
		{"invalid UTF-8", "a\xffb", "not valid UTF-8"},
		{"struct", struct{ A int }{1}, "unsupported type"},
		{"int keys", map[int]string{1: "a"}, "not a string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CanonicalJSON(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

var (
	digest0 = artifacts.Digest(strings.Repeat("0", 64))
	digest1 = artifacts.Digest(strings.Repeat("1", 64))
)

// The documents and their sha256 were written out and hashed by hand
// (python3 hashlib), independently of this package.
func TestCacheKeyVectors(t *testing.T) {
	tests := []struct {
		name    string
		spec    KeySpec
		doc     string
		wantKey string
	}{
		{
			name: "plain inputs",
			spec: KeySpec{
				Stage: "noise", Version: "v2",
				Params: map[string]any{"rate": 0.2, "kind": "symmetric", "epochs": int64(60), "list": []any{"a", int64(1), true, nil}},
				Seed:   math.MaxUint64,
				Inputs: map[string][]artifacts.Digest{"dataset": {digest0, digest1}},
			},
			doc:     `{"inputs":{"dataset":["` + string(digest0) + `","` + string(digest1) + `"]},"params":{"epochs":60,"kind":"symmetric","list":["a",1,true,null],"rate":0.2},"seed":18446744073709551615,"stage":"noise","version":"v2"}`,
			wantKey: "36defee621ee8a37960f3b9a4e2968073c0dc97c91cae54f455d1ad8a4987ee2",
		},
		{
			name: "gathered inputs with tags",
			spec: KeySpec{
				Stage: "gather", Version: "v1",
				Inputs: map[string][]artifacts.Digest{"rows": {digest0, digest1}},
				Tags:   map[string][]map[string]string{"rows": {{"noise": "0.2"}, nil}},
			},
			doc:     `{"input_tags":{"rows":[{"noise":"0.2"},{}]},"inputs":{"rows":["` + string(digest0) + `","` + string(digest1) + `"]},"params":{},"seed":0,"stage":"gather","version":"v1"}`,
			wantKey: "5e37884b2ab7512c7b73a6d7b61261478d0ad577e1ccc278c220f69e53f12fb4",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := KeyDocument(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if string(doc) != tc.doc {
				t.Errorf("document\ngot  %s\nwant %s", doc, tc.doc)
			}
			key, err := CacheKey(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if key != tc.wantKey {
				t.Errorf("key = %s, want %s", key, tc.wantKey)
			}
		})
	}
}

func baseKeySpec() KeySpec {
	return KeySpec{
		Stage: "train", Version: "v3",
		Params: map[string]any{"epochs": int64(60), "lr": 0.1, "model": "mlp", "attacks": []any{"clean", "pgd20"}, "opts": map[string]any{"b": int64(1)}},
		Seed:   42,
		Inputs: map[string][]artifacts.Digest{"train": {digest0}, "val": {digest1}},
	}
}

func TestCacheKeyIgnoresMapOrder(t *testing.T) {
	want, err := CacheKey(baseKeySpec())
	if err != nil {
		t.Fatal(err)
	}
	// Build the same maps in a different insertion order many times; Go's
	// randomised map iteration would expose any order dependence.
	for i := 0; i < 50; i++ {
		ks := baseKeySpec()
		params := map[string]any{}
		for _, k := range []string{"opts", "model", "lr", "epochs", "attacks"} {
			params[k] = ks.Params[k]
		}
		ks.Params = params
		ks.Inputs = map[string][]artifacts.Digest{"val": {digest1}, "train": {digest0}}
		got, err := CacheKey(ks)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("key depends on map order: %s != %s", got, want)
		}
	}
}

func TestCacheKeyChangesWithEveryField(t *testing.T) {
	base, err := CacheKey(baseKeySpec())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(*KeySpec)
	}{
		{"stage", func(k *KeySpec) { k.Stage = "train2" }},
		{"version", func(k *KeySpec) { k.Version = "v4" }},
		{"int param", func(k *KeySpec) { k.Params["epochs"] = int64(80) }},
		{"float param", func(k *KeySpec) { k.Params["lr"] = 0.10000000000000002 }},
		{"string param", func(k *KeySpec) { k.Params["model"] = "cnn" }},
		{"list param order", func(k *KeySpec) { k.Params["attacks"] = []any{"pgd20", "clean"} }},
		{"nested map param", func(k *KeySpec) { k.Params["opts"] = map[string]any{"b": int64(2)} }},
		{"added param", func(k *KeySpec) { k.Params["extra"] = false }},
		{"removed param", func(k *KeySpec) { delete(k.Params, "model") }},
		{"seed", func(k *KeySpec) { k.Seed = 43 }},
		{"input digest", func(k *KeySpec) { k.Inputs["val"] = []artifacts.Digest{digest0} }},
		{"input port name", func(k *KeySpec) { k.Inputs["valid"] = k.Inputs["val"]; delete(k.Inputs, "val") }},
		{"input order", func(k *KeySpec) { k.Inputs["train"] = []artifacts.Digest{digest1, digest0} }},
		{"input tags", func(k *KeySpec) { k.Tags = map[string][]map[string]string{"train": {{"noise": "0.2"}}} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ks := baseKeySpec()
			tc.change(&ks)
			got, err := CacheKey(ks)
			if err != nil {
				t.Fatal(err)
			}
			if got == base {
				t.Errorf("changing %s left the key unchanged", tc.name)
			}
		})
	}
}

func TestCacheKeyRejectsNaN(t *testing.T) {
	ks := baseKeySpec()
	ks.Params["lr"] = math.NaN()
	if _, err := CacheKey(ks); err == nil || !strings.Contains(err.Error(), "params.lr") {
		t.Fatalf("err = %v, want an error naming params.lr", err)
	}
}

// Vectors computed by hand with python3 hashlib.
func TestDeriveSeed(t *testing.T) {
	tests := []struct {
		root uint64
		id   string
		want uint64
	}{
		{0, "data", 24976262830993097},
		{7, "train[method=sglr,noise=0.2]", 131794704506039472},
	}
	for _, tc := range tests {
		if got := DeriveSeed(tc.root, tc.id); got != tc.want {
			t.Errorf("DeriveSeed(%d, %q) = %d, want %d", tc.root, tc.id, got, tc.want)
		}
	}
	if DeriveSeed(0, "a") == DeriveSeed(1, "a") || DeriveSeed(0, "a") == DeriveSeed(0, "b") {
		t.Error("seed does not depend on root and id")
	}
}
