package natsexec

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// boundedStage declares params with bounds and an enum.
type boundedStage struct{}

func (boundedStage) Spec() stages.Spec {
	return stages.Spec{
		Name: "bounded", Version: "v1",
		Outputs: []stages.Port{{Name: "table", Kind: artifacts.KindTable}},
		Params: []stages.Param{
			{Name: "rate", Type: stages.TypeFloat, Default: 0.5, Min: stages.Float(0), Max: stages.Float(1)},
			{Name: "epochs", Type: stages.TypeInt, Required: true, Min: stages.Float(1)},
			{Name: "kind", Type: stages.TypeString, Default: "symmetric", Enum: []string{"symmetric", "pair"}},
			{Name: "flag", Type: stages.TypeBool, Default: false},
			{Name: "classes", Type: stages.TypeList},
			{Name: "eps", Type: stages.TypeMap},
		},
	}
}

func (boundedStage) Run(ctx context.Context, env *stages.Env) error {
	rate, epochs := env.Params.Float("rate"), env.Params.Int("epochs")
	_, _ = env.Params.String("kind"), env.Params.Bool("flag")
	return env.WriteTable("table", &artifacts.Table{Columns: []artifacts.Column{{Name: "v", Floats: []float64{rate * float64(epochs)}}}})
}

// validParams are params of boundedStage as the coordinator sends them.
func validParams() stages.Params {
	return stages.Params{"rate": 0.2, "epochs": int64(3), "kind": "pair", "flag": true,
		"classes": []any{int64(1), "dog", 2.5, false}, "eps": map[string]any{"0": 0.1, "deep": []any{int64(1)}}}
}

func TestCheckParams(t *testing.T) {
	tests := []struct {
		name   string
		change func(p stages.Params)
		want   string // "" for no error
	}{
		{"valid", func(stages.Params) {}, ""},
		{"optional param without default absent", func(p stages.Params) { delete(p, "classes"); delete(p, "eps") }, ""},
		{"int for a float", func(p stages.Params) { p["rate"] = int64(1) }, `param "rate": want float, got int 1`},
		{"float for an int", func(p stages.Params) { p["epochs"] = 3.0 }, `param "epochs": want int, got float 3.0`},
		{"string for an int", func(p stages.Params) { p["epochs"] = "3" }, `param "epochs": want int, got string "3"`},
		{"string for a bool", func(p stages.Params) { p["flag"] = "yes" }, `param "flag": want bool, got string "yes"`},
		{"list for a string", func(p stages.Params) { p["kind"] = []any{"pair"} }, `param "kind": want string, got list`},
		{"map for a list", func(p stages.Params) { p["classes"] = map[string]any{} }, `param "classes": want list, got map`},
		{"nested list", func(p stages.Params) { p["classes"] = []any{[]any{int64(1)}} },
			`param "classes": list elements must be scalars, element 0 is list`},
		{"scalar for a map", func(p stages.Params) { p["eps"] = 0.1 }, `param "eps": want map, got float 0.1`},
		{"below the minimum", func(p stages.Params) { p["rate"] = -0.1 }, `param "rate": -0.1 is below the minimum 0`},
		{"above the maximum", func(p stages.Params) { p["rate"] = 1.5 }, `param "rate": 1.5 is above the maximum 1`},
		{"NaN", func(p stages.Params) { p["rate"] = math.NaN() }, `param "rate": .nan is not a number; want a finite number from 0 to 1`},
		{"int below the minimum", func(p stages.Params) { p["epochs"] = int64(0) }, `param "epochs": 0 is below the minimum 1`},
		{"not in the enum", func(p stages.Params) { p["kind"] = "uniform" },
			`param "kind": "uniform" is not one of "symmetric", "pair"`},
		{"required param missing", func(p stages.Params) { delete(p, "epochs") }, `param "epochs": missing`},
		{"defaulted param missing", func(p stages.Params) { delete(p, "kind") }, `param "kind": missing`},
		{"undeclared param", func(p stages.Params) { p["shell"] = "rm -rf /" },
			`param "shell": not declared by the stage (declared: rate, epochs, kind, flag, classes, eps)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			params := validParams()
			tt.change(params)
			err := checkParams(boundedStage{}.Spec(), params)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("checkParams: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
	t.Run("every problem reported", func(t *testing.T) {
		params := validParams()
		params["rate"], params["epochs"] = int64(1), "3"
		err := checkParams(boundedStage{}.Spec(), params)
		if err == nil || !strings.Contains(err.Error(), `param "rate"`) || !strings.Contains(err.Error(), `param "epochs"`) {
			t.Errorf("error %v, want both params named", err)
		}
	})
}

// TestWorkerRefusesBadParams puts hand-made tasks on the queue whose key
// matches their (wrong) params, as no coordinator would make them: the
// worker must fail each with a message naming the param, not run the stage
// into a panic.
func TestWorkerRefusesBadParams(t *testing.T) {
	srv := startServer(t)
	reg := testRegistry()
	reg.Register(boundedStage{})
	logs := startWorker(t, srv.ClientURL(), WorkerConfig{Name: "strict", Cores: 1, Registry: reg})
	nc := connect(t, srv.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	results, err := js.Stream(context.Background(), ResultStream)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		uses   string
		params stages.Params
		want   string
	}{
		{"int for a float", "gen", stages.Params{"n": int64(2), "scale": int64(2), "extra": []any{}},
			`param "scale": want float, got int 2`},
		{"string for an int", "gen", stages.Params{"n": "2", "scale": 1.0, "extra": []any{}},
			`param "n": want int, got string "2"`},
		{"undeclared", "gen", stages.Params{"n": int64(2), "scale": 1.0, "extra": []any{}, "bogus": true},
			`param "bogus": not declared by the stage`},
		{"out of range", "bounded", stages.Params{"rate": 7.0, "epochs": int64(1), "kind": "pair", "flag": false},
			`param "rate": 7.0 is above the maximum 1`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wire, err := encodeParams(tt.params)
			if err != nil {
				t.Fatal(err)
			}
			key, err := keyOf(tt.uses, "v1", tt.params, 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			task := taskMessage{Protocol: protocolVersion, Run: "handmade", Task: "t" + string(rune('a'+i)),
				Instance: tt.uses + "[hand-made]", Uses: tt.uses, Version: "v1", Params: wire, Seed: 1, Cores: 1, Key: key}
			data, err := json.Marshal(task)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := js.Publish(ctx, taskSubject(nil), data); err != nil {
				t.Fatal(err)
			}
			var r resultMessage
			for {
				raw, err := results.GetLastMsgForSubject(ctx, resultSubjects+task.Run+"."+task.Task)
				if err == nil {
					if err := json.Unmarshal(raw.Data, &r); err != nil {
						t.Fatal(err)
					}
					break
				}
				select {
				case <-ctx.Done():
					t.Fatalf("no result for the task within 20s (worker log: %v)", logs.lines)
				case <-time.After(20 * time.Millisecond):
				}
			}
			if r.Error == "" || len(r.Outputs) != 0 {
				t.Fatalf("the task ran: outputs %v, error %q", r.Outputs, r.Error)
			}
			// The coordinator puts the instance in front of the error (once).
			if !strings.Contains(r.Error, tt.want) || !strings.Contains(r.Error, "refused") ||
				strings.Contains(r.Error, "panic") || strings.Contains(r.Error, "goroutine") {
				t.Errorf("task error %q, want a refusal saying %q, with no panic", r.Error, tt.want)
			}
		})
	}
}
