package natsexec

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

func TestParamsTravelExactly(t *testing.T) {
	tests := []struct {
		name  string
		value any
	}{
		{"int", int64(-7)},
		{"large int", int64(1<<62 + 1)},
		{"float", 0.1},
		{"integral float", 3.0},
		{"tiny float", 5e-324},
		{"negative zero", math.Copysign(0, -1)},
		{"infinity", math.Inf(-1)},
		{"string", "symmetric"},
		{"empty string", ""},
		{"bool", true},
		{"list of mixed scalars", []any{int64(1), 2.0, "three", false}},
		{"empty list", []any{}},
		{"map", map[string]any{"0": int64(1), "eps": 8.0 / 255}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wire, err := encodeParams(stages.Params{"p": tt.value})
			if err != nil {
				t.Fatal(err)
			}
			data, err := json.Marshal(wire)
			if err != nil {
				t.Fatal(err)
			}
			var back map[string]paramValue
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatal(err)
			}
			got, err := decodeParams(back)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got["p"], tt.value) {
				t.Fatalf("sent %#v, received %#v (wire %s)", tt.value, got["p"], data)
			}
			if f, ok := tt.value.(float64); ok && math.Signbit(f) != math.Signbit(got["p"].(float64)) {
				t.Fatalf("sign of %v lost", f)
			}
		})
	}
	if _, err := encodeParams(stages.Params{"p": struct{}{}}); err == nil {
		t.Error("a value of an unsupported type was encoded")
	}
}

func TestDecodeTaskChecksWhatArrived(t *testing.T) {
	params := stages.Params{"rate": 0.2, "kind": "symmetric"}
	inputs := map[string][]inputRef{"dataset": {{Digest: artifacts.Digest(strings.Repeat("a", 64)), Tags: map[string]string{"noise": "0.2"}}}}
	wire, err := encodeParams(params)
	if err != nil {
		t.Fatal(err)
	}
	key, err := keyOf("noise", "v1", params, 42, inputs)
	if err != nil {
		t.Fatal(err)
	}
	good := taskMessage{
		Protocol: protocolVersion, Run: "r", Task: "t", Instance: "noisy", Uses: "noise", Version: "v1",
		Params: wire, Seed: 42, Inputs: inputs, Cores: 1, Key: key,
	}
	tests := []struct {
		name    string
		change  func(m map[string]any)
		wantErr string
	}{
		{"intact", func(map[string]any) {}, ""},
		{"seed changed", func(m map[string]any) { m["seed"] = 43 }, "arrived altered"},
		{"param changed", func(m map[string]any) {
			m["params"].(map[string]any)["rate"] = map[string]any{"t": "float", "f": "0.3"}
		}, "arrived altered"},
		{"other protocol", func(m map[string]any) { m["protocol"] = 99 }, "speaks protocol 99"},
		{"unknown field", func(m map[string]any) { m["shell"] = "rm -rf /" }, "unknown field"},
		{"no instance", func(m map[string]any) { delete(m, "instance") }, "lacks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := json.Marshal(good)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatal(err)
			}
			tt.change(m)
			if data, err = json.Marshal(m); err != nil {
				t.Fatal(err)
			}
			task, got, err := decodeTask(data)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, params) || task.Seed != 42 {
					t.Fatalf("decoded params %v seed %d", got, task.Seed)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestCheckLabels(t *testing.T) {
	tests := []struct {
		in      []string
		want    []string
		wantErr bool
	}{
		{nil, []string{}, false},
		{[]string{"gpu", "big-mem", "gpu"}, []string{"big-mem", "gpu"}, false},
		{[]string{"GPU"}, nil, true},
		{[]string{"a.b"}, nil, true},
		{[]string{"a_b"}, nil, true},
		{[]string{"-a"}, nil, true},
		{[]string{""}, nil, true},
	}
	for _, tt := range tests {
		got, err := CheckLabels(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("CheckLabels(%q) = %q, %v", tt.in, got, err)
		}
	}
	if laneName(nil) != "_" || laneName([]string{"big-mem", "gpu"}) != "big-mem_gpu" {
		t.Error("lane names changed")
	}
}
