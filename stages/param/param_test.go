package param

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

func ptr(f float64) *float64 { return &f }

// TestValue checks how each kind of Go value a parameter may arrive as (from
// YAML, JSON with UseNumber, Go code) is typed, and what is refused.
func TestValue(t *testing.T) {
	ranged := Decl{Name: "rate", Type: Float, Min: ptr(0), Max: ptr(1)}
	tests := []struct {
		name string
		decl Decl
		v    any
		want any
		msgs []string // problems, in order; nil when v is accepted
		elem []int    // Problem.Elem of each
	}{
		{"int", Decl{Name: "n", Type: Int}, int64(3), int64(3), nil, nil},
		{"Go int", Decl{Name: "n", Type: Int}, 3, int64(3), nil, nil},
		{"integral float into int", Decl{Name: "n", Type: Int}, 1e3, int64(1000), nil, nil},
		{"JSON integer", Decl{Name: "n", Type: Int}, json.Number("7"), int64(7), nil, nil},
		{"JSON integral float into int", Decl{Name: "n", Type: Int}, json.Number("2.0"), int64(2), nil, nil},
		{"fraction into int", Decl{Name: "n", Type: Int}, 2.5, nil, []string{"want int, got float 2.5"}, []int{0}},
		{"huge float into int", Decl{Name: "n", Type: Int}, 1e19, nil, []string{"want int, got float 1e+19"}, []int{0}},
		{"int into float", Decl{Name: "lr", Type: Float}, int64(1), 1.0, nil, nil},
		{"float32", Decl{Name: "lr", Type: Float}, float32(0.5), 0.5, nil, nil},
		{"string into float", Decl{Name: "lr", Type: Float}, "0.1", nil, []string{`want float, got string "0.1"`}, []int{0}},
		{"NaN into a range", ranged, math.NaN(), nil, []string{".nan is not a number; want a finite number from 0 to 1"}, []int{0}},
		{"above the maximum", ranged, 1.5, nil, []string{"1.5 is above the maximum 1"}, []int{0}},
		{"scalar enum", Decl{Name: "kind", Type: String, Enum: []string{"symmetric", "pair"}}, "symetric", nil,
			[]string{`"symetric" is not one of "symmetric", "pair"`}, []int{0}},
		{"list of Go values", Decl{Name: "l", Type: List}, []int{1, 2}, []any{int64(1), int64(2)}, nil, nil},
		{"list of JSON numbers", Decl{Name: "l", Type: List}, []any{json.Number("1"), json.Number("2.5")}, []any{int64(1), 2.5}, nil, nil},
		{"nested list", Decl{Name: "l", Type: List}, []any{[]any{1}}, nil, []string{"list elements must be scalars, element 0 is list"}, []int{0}},
		{"null element", Decl{Name: "l", Type: List}, []any{"a", nil}, nil, []string{"list elements must be scalars, element 1 is null"}, []int{0}},
		{"list enum, every bad element", Decl{Name: "attacks", Type: List, Enum: []string{"clean", "pgd", "cw"}},
			[]any{"clean", "pgd20", "cw2"}, nil,
			[]string{`"pgd20" is not one of "clean", "pgd", "cw"`, `"cw2" is not one of "clean", "pgd", "cw"`}, []int{2, 3}},
		{"map with nested values", Decl{Name: "m", Type: Map}, map[string]any{"a": []int{1}}, map[string]any{"a": []any{int64(1)}}, nil, nil},
		{"a func", Decl{Name: "n", Type: Int}, func() {}, nil, []string{"want int, got func()"}, []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problems := tt.decl.Value(tt.v)
			if len(problems) != len(tt.msgs) {
				t.Fatalf("Value(%#v) problems %v, want %q", tt.v, problems, tt.msgs)
			}
			for i, p := range problems {
				if p.Msg != tt.msgs[i] || p.Elem != tt.elem[i] || p.Param != tt.decl.Name {
					t.Errorf("problem %d = %+v, want %q at element %d", i, p, tt.msgs[i], tt.elem[i])
				}
			}
			if tt.msgs == nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Value(%#v) = %#v, want %#v", tt.v, got, tt.want)
			}
		})
	}
}

// TestEnumHint checks that a value close to an enum's gets a suggestion.
func TestEnumHint(t *testing.T) {
	_, problems := Decl{Name: "labels", Type: String, Enum: []string{"hard", "sglr"}}.Value("sglrr")
	if len(problems) != 1 || problems[0].Hint != `did you mean "sglr"?` {
		t.Fatalf("problems %+v, want one suggesting sglr", problems)
	}
	want := `param "labels": "sglrr" is not one of "hard", "sglr" (did you mean "sglr"?)`
	if got := problems[0].Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

var decls = []Decl{
	{Name: "rate", Type: Float, Default: 0.5},
	{Name: "n", Type: Int, Required: true},
	{Name: "tags", Type: List},
}

// TestDecode checks that defaults fill what is missing and that a missing
// required value and an undeclared name are problems.
func TestDecode(t *testing.T) {
	got, problems := Decode(decls, map[string]any{"n": json.Number("3")})
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if want := (Values{"rate": 0.5, "n": int64(3)}); !reflect.DeepEqual(got, want) {
		t.Errorf("Decode = %#v, want %#v", got, want)
	}
	_, problems = Decode(decls, map[string]any{"rats": 1})
	var msgs []string
	for _, p := range problems {
		msgs = append(msgs, p.Error())
	}
	joined := strings.Join(msgs, "\n")
	for _, want := range []string{`param "n": required, but not given`, `param "rats": not declared by the stage (did you mean "rate"?)`} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems:\n%s\nlack %q", joined, want)
		}
	}
}

// TestCheck checks that Check accepts typed values and refuses what Value
// would have converted: it only checks.
func TestCheck(t *testing.T) {
	if problems := Check(decls, Values{"rate": 0.2, "n": int64(1)}); len(problems) > 0 {
		t.Fatalf("typed values refused: %v", problems)
	}
	tests := []struct {
		values Values
		want   string
	}{
		{Values{"rate": int64(1), "n": int64(1)}, `param "rate": want float, got int 1`},
		{Values{"rate": 0.2, "n": 1.0}, `param "n": want int, got float 1.0`},
		{Values{"rate": 0.2, "n": 1}, `param "n": want int, got Go int 1`},
		{Values{"n": int64(1)}, `param "rate": missing`},
		{Values{"rate": 0.2, "n": int64(1), "tags": []any{1}}, `param "tags": list elements must be scalars, element 0 is int 1`},
	}
	for _, tt := range tests {
		problems := Check(decls, tt.values)
		if len(problems) != 1 || !strings.HasPrefix(problems[0].Error(), tt.want) {
			t.Errorf("Check(%#v) = %v, want %q", tt.values, problems, tt.want)
		}
	}
}
