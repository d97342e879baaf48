package stages

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// echoStage is an in-test stage: it writes its typed params and inputs to its
// output, reports progress and a summary, and fails on request.
type echoStage struct {
	skipOutput bool
	fail       string
	waitCancel bool
}

func (echoStage) Spec() Spec {
	return Spec{
		Name: "echo", Version: "v2", Doc: "writes its params",
		Inputs:  []Port{{Name: "data", Kind: "dataset", Optional: true}},
		Outputs: []Port{{Name: "out", Kind: "table"}},
		Params: []Param{
			{Name: "rate", Type: TypeFloat, Default: 0.5, Min: Float(0), Max: Float(10)},
			{Name: "n", Type: TypeInt, Required: true},
			{Name: "mode", Type: TypeString, Default: "fast", Enum: []string{"fast", "slow"}},
			{Name: "verbose", Type: TypeBool, Default: false},
			{Name: "tags", Type: TypeList, Default: []any{}},
			{Name: "opts", Type: TypeMap},
		},
	}
}

func (s echoStage) Run(ctx context.Context, env *Env) error {
	env.Progress.Start(3, "steps")
	env.Progress.Add(1)
	env.Progress.Status("half way")
	if s.waitCancel {
		<-ctx.Done()
		return fmt.Errorf("%s: %w", env.Instance, ctx.Err())
	}
	if s.fail != "" {
		return errors.New(s.fail)
	}
	// Accessors panic on a wrong Go type: calling them is the check.
	got := fmt.Sprintf("rate=%v n=%d mode=%s verbose=%t tags=%#v opts=%#v seed=%d",
		env.Params.Float("rate"), env.Params.Int("n"), env.Params.String("mode"),
		env.Params.Bool("verbose"), env.Params.List("tags"), env.Params.Map("opts"), env.Seed)
	if env.HasInput("data") {
		in, err := env.Input("data")
		if err != nil {
			return err
		}
		b, err := os.ReadFile(in.Path)
		if err != nil {
			return err
		}
		got += fmt.Sprintf(" data=%s digest=%s tag=%s", b, in.Digest, in.Tags["noise"])
	}
	env.Report("count", 7)
	if s.skipOutput {
		return nil
	}
	return os.WriteFile(env.OutputPath("out"), []byte(got), 0o644)
}

func TestServeArgsDescribeRoundTrips(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := ServeArgs(context.Background(), echoStage{}, []string{"describe"}, &stdout, &stderr); code != 0 {
		t.Fatalf("describe exit %d, stderr %s", code, stderr.String())
	}
	got, err := DecodeSpec(stdout.Bytes())
	if err != nil {
		t.Fatalf("DecodeSpec(describe output): %v\n%s", err, stdout.String())
	}
	want := echoStage{}.Spec()
	// Defaults come back typed by the param type, so the round trip is exact.
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %#v\nwant %#v", got, want)
	}
}

func TestServeArgsRun(t *testing.T) {
	dir := t.TempDir()
	input := filepath.Join(dir, "input")
	if err := os.WriteFile(input, []byte("DATA"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	// rate is written as 3 (JSON's only number), tags mixes kinds, mode and
	// verbose are absent so their defaults apply.
	req := fmt.Sprintf(`{"protocol":"sglr-plugin/1","instance":"echo[x=1]","seed":42,
		"params":{"rate":3,"n":5,"tags":[1,"a",2.5],"opts":{"k":1}},
		"inputs":{"data":[{"digest":"abc","path":%q,"tags":{"noise":"0.2"}}]},
		"out_dir":%q}`, input, out)
	reqPath := filepath.Join(dir, "req.json")
	if err := os.WriteFile(reqPath, []byte(req), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := ServeArgs(context.Background(), echoStage{}, []string{"run", reqPath}, &stdout, &stderr); code != 0 {
		t.Fatalf("run exit %d, stderr:\n%s", code, stderr.String())
	}
	got, err := os.ReadFile(filepath.Join(out, "out"))
	if err != nil {
		t.Fatal(err)
	}
	want := `rate=3 n=5 mode=fast verbose=false tags=[]interface {}{1, "a", 2.5} opts=map[string]interface {}{"k":1} seed=42 data=DATA digest=abc tag=0.2`
	if string(got) != want {
		t.Errorf("output:\n got %s\nwant %s", got, want)
	}
	summary, err := os.ReadFile(filepath.Join(out, PluginSummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	if string(summary) != `{"count":7}` {
		t.Errorf("summary = %s", summary)
	}
	wantEvents := `{"progress":{"start":3,"unit":"steps"}}
{"progress":{"add":1}}
{"status":"half way"}
`
	if stderr.String() != wantEvents {
		t.Errorf("stderr:\n got %q\nwant %q", stderr.String(), wantEvents)
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if _, ok := ParsePluginEvent(line); !ok {
			t.Errorf("ParsePluginEvent(%q) not ok", line)
		}
	}
}

func TestServeArgsRunErrors(t *testing.T) {
	tests := []struct {
		name     string
		stage    echoStage
		request  string // %s is out_dir
		wantCode int
		wantLast string // substring of the last stderr line
	}{
		{"stage error", echoStage{fail: "boom: bad input"}, `{"protocol":"sglr-plugin/1","params":{"n":1},"out_dir":%q}`, 1, "boom: bad input"},
		{"missing output", echoStage{skipOutput: true}, `{"protocol":"sglr-plugin/1","instance":"e","params":{"n":1},"out_dir":%q}`, 1, `without writing output "out"`},
		{"wrong protocol", echoStage{}, `{"protocol":"sglr-plugin/9","params":{"n":1},"out_dir":%q}`, 1, `protocol "sglr-plugin/9"`},
		{"no protocol", echoStage{}, `{"params":{"n":1},"out_dir":%q}`, 1, `protocol ""`},
		{"required missing", echoStage{}, `{"protocol":"sglr-plugin/1","params":{},"out_dir":%q}`, 1, `param "n": required, but not given`},
		{"unknown param", echoStage{}, `{"protocol":"sglr-plugin/1","params":{"n":1,"epochs":3},"out_dir":%q}`, 1, `param "epochs": not declared by the stage`},
		{"int not integral", echoStage{}, `{"protocol":"sglr-plugin/1","params":{"n":1.5},"out_dir":%q}`, 1, `param "n": want int, got float 1.5`},
		{"float as string", echoStage{}, `{"protocol":"sglr-plugin/1","params":{"n":1,"rate":"x"},"out_dir":%q}`, 1, `param "rate": want float, got string "x"`},
		{"list of lists", echoStage{}, `{"protocol":"sglr-plugin/1","params":{"n":1,"tags":[[1]]},"out_dir":%q}`, 1, `list elements must be scalars, element 0 is list`},
		{"not json", echoStage{}, `{"protocol": %q`, 1, "decode request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			reqPath := filepath.Join(dir, "req.json")
			if err := os.WriteFile(reqPath, []byte(fmt.Sprintf(tt.request, dir)), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			code := ServeArgs(context.Background(), tt.stage, []string{"run", reqPath}, &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.wantCode, stderr.String())
			}
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if last := lines[len(lines)-1]; !strings.Contains(last, tt.wantLast) {
				t.Errorf("last stderr line %q does not contain %q", last, tt.wantLast)
			}
			if _, err := os.Stat(filepath.Join(dir, PluginSummaryFile)); err == nil {
				t.Errorf("failed run wrote %s", PluginSummaryFile)
			}
		})
	}
}

func TestServeArgsUsage(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
	}{
		{nil, 2},
		{[]string{"frobnicate"}, 2},
		{[]string{"describe", "extra"}, 2},
		{[]string{"run"}, 2},
		{[]string{"run", "/nonexistent/req.json"}, 1},
		{[]string{"--help"}, 0},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, "_"), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := ServeArgs(context.Background(), echoStage{}, tt.args, &stdout, &stderr); code != tt.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String()+stderr.String(), "sglr-plugin/1") && tt.wantCode != 1 {
				t.Errorf("usage does not name the protocol: %q", stdout.String()+stderr.String())
			}
		})
	}
}

func TestServeArgsCancel(t *testing.T) {
	dir := t.TempDir()
	reqPath := filepath.Join(dir, "req.json")
	req := fmt.Sprintf(`{"protocol":"sglr-plugin/1","instance":"e","params":{"n":1},"out_dir":%q}`, dir)
	if err := os.WriteFile(reqPath, []byte(req), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	if code := ServeArgs(ctx, echoStage{waitCancel: true}, []string{"run", reqPath}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "context canceled") {
		t.Errorf("stderr does not say cancelled: %q", stderr.String())
	}
}

func TestDecodeSpecRejects(t *testing.T) {
	valid := func() map[string]any {
		return map[string]any{
			"name": "x", "version": "v1",
			"inputs":  []any{map[string]any{"name": "in", "kind": "dataset"}},
			"outputs": []any{map[string]any{"name": "out", "kind": "dataset"}},
			"params":  []any{map[string]any{"name": "k", "type": "int", "default": 3}},
		}
	}
	tests := []struct {
		name   string
		edit   func(m map[string]any)
		raw    string
		wantIn string
	}{
		{name: "not json", raw: "hello", wantIn: "decode spec"},
		{name: "trailing data", raw: `{"name":"x","version":"v"} {}`, wantIn: "extra data"},
		{name: "no name", edit: func(m map[string]any) { delete(m, "name") }, wantIn: "no name"},
		{name: "no version", edit: func(m map[string]any) { m["version"] = "" }, wantIn: "no version"},
		{name: "port without kind", edit: func(m map[string]any) {
			m["outputs"] = []any{map[string]any{"name": "out"}}
		}, wantIn: `output port "out" has no kind`},
		{name: "port name with slash", edit: func(m map[string]any) {
			m["outputs"] = []any{map[string]any{"name": "../etc", "kind": "table"}}
		}, wantIn: `name "../etc" must match`},
		{name: "duplicate input", edit: func(m map[string]any) {
			p := map[string]any{"name": "in", "kind": "dataset"}
			m["inputs"] = []any{p, p}
		}, wantIn: `input port "in" declared twice`},
		{name: "optional output", edit: func(m map[string]any) {
			m["outputs"] = []any{map[string]any{"name": "out", "kind": "table", "optional": true}}
		}, wantIn: "cannot be optional"},
		{name: "unknown param type", edit: func(m map[string]any) {
			m["params"] = []any{map[string]any{"name": "k", "type": "integer"}}
		}, wantIn: `unknown type "integer"`},
		{name: "default of wrong type", edit: func(m map[string]any) {
			m["params"] = []any{map[string]any{"name": "k", "type": "int", "default": "three"}}
		}, wantIn: `param "k": default: want int, got string "three"`},
		{name: "min above max", edit: func(m map[string]any) {
			m["params"] = []any{map[string]any{"name": "k", "type": "float", "min": 2, "max": 1}}
		}, wantIn: "min 2 exceeds max 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.raw)
			if tt.edit != nil {
				m := valid()
				tt.edit(m)
				var err error
				if data, err = json.Marshal(m); err != nil {
					t.Fatal(err)
				}
			}
			_, err := DecodeSpec(data)
			if err == nil || !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("DecodeSpec error = %v, want it to contain %q", err, tt.wantIn)
			}
		})
	}
	// The unedited spec is accepted and its int default typed as int64.
	data, _ := json.Marshal(valid())
	spec, err := DecodeSpec(data)
	if err != nil {
		t.Fatalf("valid spec rejected: %v", err)
	}
	if d, ok := spec.Params[0].Default.(int64); !ok || d != 3 {
		t.Errorf("default = %#v, want int64(3)", spec.Params[0].Default)
	}
}

func TestParsePluginEvent(t *testing.T) {
	var rec recordingProgress
	tests := []struct {
		line string
		ok   bool
		want string // what rec logs after Apply
	}{
		{`{"progress":{"start":10,"unit":"epochs"}}`, true, "start 10 epochs"},
		{`{"progress":{"unit":""}}`, true, "start 0 "},
		{`{"progress":{"add":2}}`, true, "add 2"},
		{`  {"status":"loss 0.4"}  `, true, "status loss 0.4"},
		{`epoch 3 loss 0.4`, false, ""},
		{`{"progress":{"add":1},"status":"x"}`, false, ""},
		{`{"other":1}`, false, ""},
		{`{}`, false, ""},
		{`{"status":"a"} trailing`, false, ""},
	}
	for _, tt := range tests {
		rec = recordingProgress{}
		ev, ok := ParsePluginEvent(tt.line)
		if ok != tt.ok {
			t.Errorf("ParsePluginEvent(%q) ok = %v, want %v", tt.line, ok, tt.ok)
			continue
		}
		if ok {
			ev.Apply(&rec)
			if rec.log != tt.want {
				t.Errorf("Apply(%q) = %q, want %q", tt.line, rec.log, tt.want)
			}
		}
	}
}

type recordingProgress struct{ log string }

func (r *recordingProgress) Start(n int64, unit string) { r.log = fmt.Sprintf("start %d %s", n, unit) }
func (r *recordingProgress) Add(n int64)                { r.log = fmt.Sprintf("add %d", n) }
func (r *recordingProgress) Status(s string)            { r.log = "status " + s }
