package dsl

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

// nested returns "a: " followed by depth flow sequences, closed.
func nested(depth int) string {
	return "a: " + strings.Repeat("[", depth) + strings.Repeat("]", depth) + "\n"
}

// blockNested returns depth mappings nested by indentation.
func blockNested(depth int) string {
	var b strings.Builder
	for i := range depth {
		fmt.Fprintf(&b, "%sk%d:\n", strings.Repeat(" ", i), i)
	}
	return b.String()
}

// seqNested returns depth sequence items, each a mapping whose value is the
// next item: two levels a line.
func seqNested(depth int) string {
	var b strings.Builder
	for i := range depth {
		fmt.Fprintf(&b, "%s- k:\n", strings.Repeat(" ", 4*i))
	}
	return b.String()
}

// keys returns a block mapping under "m" with n keys.
func keys(n int) string {
	var b strings.Builder
	b.WriteString("m:\n")
	for i := range n {
		fmt.Fprintf(&b, "  k%d: 1\n", i)
	}
	return b.String()
}

func TestScanLimits(t *testing.T) {
	deep := strings.Repeat("[", 200)
	tests := []struct {
		name string
		src  string
		want string // "" when every limit holds, else "LINE:COL message"
	}{
		{"flow nesting at the converter's limit", nested(maxDepth), ""},
		{"flow nesting past it", nested(maxDepth + 2), "1:104 YAML nesting is deeper than 100 levels"},
		{"unclosed brackets", "a: " + strings.Repeat("[", 200000), "1:104 YAML nesting is deeper than 100 levels"},
		{"flow nesting over lines", "a: [\n" + strings.Repeat("  [\n", 150), "101:3 YAML nesting is deeper than 100 levels"},
		{"block mappings", blockNested(150), "102:102 YAML nesting is deeper than 100 levels"},
		{"block mappings at the limit", blockNested(maxDepth + 1), ""},
		{"block sequences on one line", strings.Repeat("- ", 150) + "x\n", "1:203 YAML nesting is deeper than 100 levels"},
		{"sequences of mappings", seqNested(60), "51:203 YAML nesting is deeper than 100 levels"},
		{"double-quoted brackets", `a: "` + deep + `"` + "\n", ""},
		{"double-quoted with escapes", `a: "\"` + deep + `\\"` + "\n", ""},
		{"single-quoted with quotes", "a: 'it''s " + deep + "'\n", ""},
		{"quoted over lines", "a: \"x\n  " + deep + "\n  \"\n", ""},
		{"quoted key", "'k: " + deep + "': 1\n", ""},
		{"comment", "# " + deep + "\na: 1 # " + deep + "\n", ""},
		{"plain scalar", "a: x" + deep + "\n", ""},
		{"plain scalar over lines", "a: x\n  " + deep + "\n", ""},
		{"apostrophe in a plain scalar", "a: it's\nb: " + deep + "\n", "2:104 YAML nesting is deeper than 100 levels"},
		{"literal block scalar", "a: |\n  " + deep + "\n  " + deep + "\nb: 1\n", ""},
		{"folded block scalar with indicators", "- >-2\n   " + deep + "\n", ""},
		{"after a block scalar", "a: |\n  text\nb: " + deep + "\n", "3:104 YAML nesting is deeper than 100 levels"},
		{"key after a block scalar in a sequence item", "- k: |\n  x: " + deep + "\n", "2:105 YAML nesting is deeper than 100 levels"},
		{"key after a block scalar, less indented", "a:\n  b: |\n    text\n   c: " + deep + "\n", "4:106 YAML nesting is deeper than 100 levels"},
		{"key in a plain scalar's continuation", "a: x\n  b: " + deep + "\n", "2:106 YAML nesting is deeper than 100 levels"},
		{"quoted value then a deeper line", "a: 'x'\n  " + deep + "\n", "2:103 YAML nesting is deeper than 100 levels"},
		{"JSON-like flow mapping", `{"a":"]]]]]]", "b": ` + deep + "}\n", "1:121 YAML nesting is deeper than 100 levels"},
		{"flow in quotes in flow", `a: ["]]]", '[[[', ` + deep + "]\n", "1:118 YAML nesting is deeper than 100 levels"},
		{"document marker", "--- " + deep + "\n", "1:106 YAML nesting is deeper than 100 levels"},
		{"second document", "a: 1\n---\nb: " + deep + "\n", "3:104 YAML nesting is deeper than 100 levels"},
		{"expressions are not flow mappings", "a: " + strings.Repeat("[", 99) + "${{ vars.x }}" + strings.Repeat("]", 99) + "\n", ""},
		{"keys at the limit", keys(maxKeys), ""},
		{"keys past it", keys(maxKeys + 1), "502:3 a mapping has more than 500 keys"},
		{"sequence items are not keys", "m:\n" + strings.Repeat("- 1\n", 2*maxKeys), ""},
		{"flow mapping keys", "m: {" + strings.Repeat("k: 1, ", maxKeys) + "z: 1}\n", "1:3005 a mapping has more than 500 keys"},
		{"flow sequence items are not keys", "m: [" + strings.Repeat("1, ", 2*maxKeys) + "1]\n", ""},
		{"values", "a: [" + strings.Repeat("1,", maxNodes) + "1]\n", "1:400003 YAML document has more than 200000 values"},
		{"document markers", strings.Repeat("---\n", maxNodes+1), "200001:1 YAML document has more than 200000 values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if hit := scanLimits(maskExpressions([]byte(tt.src))); hit != nil {
				p := hit.pos("f.yaml")
				got = fmt.Sprintf("%d:%d %s", p.Line, p.Col, hit.msg)
			}
			if got != tt.want {
				t.Errorf("scanLimits = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestScanLimitsAcceptsWhatTheConverterAccepts checks the pre-scan is never
// stricter than the converter: every file of the repository's examples and
// test data, and random documents nested up to the converter's limit in
// block and flow style, pass it.
func TestScanLimitsAcceptsWhatTheConverterAccepts(t *testing.T) {
	var files []string
	for _, pattern := range []string{"../examples/*.yaml", "testdata/*/*.yaml"} {
		matches, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, matches...)
	}
	if len(files) < 10 {
		t.Fatalf("found only %d YAML files", len(files))
	}
	for _, file := range files {
		if filepath.Base(file) == "too_deep.yaml" {
			continue // over the limit on purpose
		}
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if hit := scanLimits(maskExpressions(src)); hit != nil {
			t.Errorf("%s:%d: %s", file, hit.line, hit.msg)
		}
	}
	rng := rand.New(rand.NewSource(1))
	for i := range 300 {
		flow := i%3 == 0
		v := randomValue(rng, 1+rng.Intn(maxDepth-1), !flow)
		opts := []yaml.EncodeOption{yaml.Indent(1 + rng.Intn(4)), yaml.IndentSequence(rng.Intn(2) == 0), yaml.Flow(flow)}
		src, err := yaml.MarshalWithOptions(map[string]any{"root": v}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if hit := scanLimits(src); hit != nil {
			t.Fatalf("document %d: %d:%d: %s\n%.3000s", i, hit.line, hit.offset+1, hit.msg, src)
		}
		var diags Diagnostics
		parseYAML("r.yaml", src, nil, &diags)
		if diags.HasErrors() {
			t.Fatalf("document %d: %.3000s\n%.3000s", i, diags.Error(), src)
		}
	}
}

// randomValue builds a value nested depth levels (along one path, with
// shallow siblings on the way): mappings, lists and
// scalars that need quoting or contain YAML indicators; with multiline, also
// strings that go-yaml writes as block scalars (which it also does, wrongly,
// in flow style).
func randomValue(rng *rand.Rand, depth int, multiline bool) any {
	scalars := []any{1, 2.5, "x", "a: b", "[not a list]", "{x}", "it's", `say "hi"`, "# not a comment", "- dash", "", true, nil}
	if multiline {
		scalars = append(scalars, "multi\nline [[[\ntext")
	}
	if depth <= 1 {
		return scalars[rng.Intn(len(scalars))]
	}
	switch rng.Intn(3) {
	case 0:
		m := map[string]any{}
		for i := range 1 + rng.Intn(3) {
			m[fmt.Sprintf("k%d", i)] = randomValue(rng, min(depth-1, 1+rng.Intn(3)), multiline)
		}
		m["deep"] = randomValue(rng, depth-1, multiline)
		return m
	case 1:
		l := []any{randomValue(rng, depth-1, multiline)}
		for range rng.Intn(3) {
			l = append(l, randomValue(rng, min(depth-1, 1+rng.Intn(3)), multiline))
		}
		return l
	}
	return scalars[rng.Intn(len(scalars))]
}

// TestParseRefusesBeforeParsing feeds Parse inputs that took go-yaml minutes
// and gigabytes (200 KB of `[`: 104 s and 15 GB; a mapping of 100 000 keys:
// 75 s and 39 GB allocated) and checks they are refused, at the offending
// line and column with the source line, in well under a second.
func TestParseRefusesBeforeParsing(t *testing.T) {
	var manyKeys strings.Builder
	manyKeys.WriteString("stages:\n")
	for i := range 100000 {
		fmt.Fprintf(&manyKeys, "  s%d: {uses: load}\n", i)
	}
	tests := []struct {
		name string
		src  string
		sets []string
		want []string
	}{
		{"nested brackets", "stages: " + strings.Repeat("[", 200000), nil,
			[]string{"Error: YAML nesting is deeper than 100 levels", "--> p.yaml:1:109", "1 | …[[[", "checked before parsing"}},
		{"many keys", manyKeys.String(), nil,
			[]string{"Error: a mapping has more than 500 keys", "--> p.yaml:502:3", "502 |   s500: {uses: load}"}},
		{"nested override", "stages: {a: {uses: load}}\n", []string{"vars.x=" + strings.Repeat("[", 500)},
			[]string{"YAML nesting is deeper than 100 levels", "--> --set vars.x=[[["}},
		{"too large", "# " + strings.Repeat("x", MaxFileSize) + "\n", nil,
			[]string{"pipeline file p.yaml is 4194307 bytes; the limit is 4194304 (4 MiB)", "--> p.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, diags := Parse("p.yaml", []byte(tt.src), tt.sets)
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("Parse took %v", elapsed)
			}
			if len(diags) != 1 {
				t.Fatalf("got %d diagnostics, want 1:\n%.2000s", len(diags), diags.Error())
			}
			got := diags.Error()
			if len(got) > 2000 {
				t.Errorf("the message is %d bytes long", len(got))
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("diagnostics lack %q:\n%s", w, got)
				}
			}
		})
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(strings.Repeat("#", size)), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name string
		path string
		want string // "" for success, else a part of the diagnostic
	}{
		{"at the limit", write("limit.yaml", MaxFileSize), ""},
		{"over the limit", write("over.yaml", MaxFileSize+1), "is 4194305 bytes; the limit is 4194304 (4 MiB)"},
		{"a directory", dir, "is a directory, not a regular file"},
		{"a device", os.DevNull, "is a device, not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := ReadFile(tt.path)
			if tt.want == "" {
				if err != nil || len(src) != MaxFileSize {
					t.Fatalf("ReadFile: %d bytes, %v", len(src), err)
				}
				return
			}
			var diags Diagnostics
			if !errors.As(err, &diags) {
				t.Fatalf("ReadFile: %v, want Diagnostics", err)
			}
			if got := diags.Error(); !strings.Contains(got, tt.want) || !strings.Contains(got, "--> "+tt.path) {
				t.Errorf("ReadFile: %s\nwant %q at %s", got, tt.want, tt.path)
			}
		})
	}
	if _, err := ReadFile(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadFile of a missing file: %v, want ErrNotExist", err)
	}
}
