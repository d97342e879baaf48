package exec

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// inPath is the shell snippet that sets $IN to the input path the request names.
const inPath = `IN=$(sed -n 's/.*"path": *"\([^"]*\)".*/\1/p' "$2")`

// TestPluginCannotChangeItsInputs runs plugins that attack the file their
// request names: the store object they were given must stay as it was, and
// the private copies must be gone when Run returns.
func TestPluginCannotChangeItsInputs(t *testing.T) {
	tests := []struct {
		name   string
		attack string // OUTDIR is the out dir
	}{
		{"chmod and overwrite", `chmod u+w "$IN"; echo junk > "$IN"`},
		{"chmod 777 and truncate", `chmod 777 "$IN"; : > "$IN"`},
		{"remove", `rm -f "$IN"`},
		{"lock the copies' directory", `chmod 000 "$(dirname "$IN")"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, _ := newEnv(t)
			store := env.Inputs["in"][0].Path
			before, err := os.Stat(store)
			if err != nil {
				t.Fatal(err)
			}
			body := inPath + `
cp "$IN" 'OUTDIR/out'
` + tt.attack
			stage, err := Open(writeScript(t, scriptSpec, strings.ReplaceAll(body, "OUTDIR", env.OutDir)))
			if err != nil {
				t.Fatal(err)
			}
			if err := stage.Run(context.Background(), env); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got, err := os.ReadFile(store); err != nil || string(got) != "INPUT" {
				t.Errorf("store object after the plugin: %q, %v; want it intact (\"INPUT\")", got, err)
			}
			if after, err := os.Stat(store); err != nil {
				t.Errorf("store object: %v", err)
			} else if after.Mode() != before.Mode() {
				t.Errorf("store object mode %v, was %v", after.Mode(), before.Mode())
			}
			if got, err := os.ReadFile(env.OutputPath("out")); err != nil || string(got) != "INPUT" {
				t.Errorf("the plugin's copy of its input read %q, %v; want \"INPUT\"", got, err)
			}
			entries, err := os.ReadDir(env.OutDir)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if !slices.Equal(names, []string{"out"}) {
				t.Errorf("OutDir holds %q after Run, want only the output", names)
			}
		})
	}
}

// TestPrivateCopiesAreReadOnly checks what the plugin is handed: a file of
// mode 0444 with the input's bytes, one per input, under .inputs.
func TestPrivateCopiesAreReadOnly(t *testing.T) {
	dir := t.TempDir()
	var ins []string
	for _, data := range []string{"first", "second"} {
		p := filepath.Join(t.TempDir(), "obj")
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		ins = append(ins, p)
	}
	inputs := map[string][]stages.Input{"rows": {
		{Digest: digestOf([]byte("first")), Path: ins[0]},
		{Digest: digestOf([]byte("second")), Path: ins[1]},
	}}
	copies, err := privateInputs(context.Background(), filepath.Join(dir, inputsDir), inputs)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"first", "second"} {
		c := copies["rows"][i]
		if c.Digest != inputs["rows"][i].Digest || !filepath.IsAbs(c.Path) || !strings.HasPrefix(c.Path, filepath.Join(dir, inputsDir)) {
			t.Errorf("copy %d: %+v", i, c)
		}
		info, err := os.Stat(c.Path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o444 {
			t.Errorf("copy %d has mode %v, want -r--r--r--", i, info.Mode().Perm())
		}
		if got, _ := os.ReadFile(c.Path); string(got) != want {
			t.Errorf("copy %d holds %q, want %q", i, got, want)
		}
	}
}

// TestCorruptInputFailsWithDigestError changes the store object after it
// was "stored": the plugin must not run, and the error must name the object
// so that the scheduler can rebuild it.
func TestCorruptInputFailsWithDigestError(t *testing.T) {
	tests := []struct {
		name string
		data string // what the object holds instead of "INPUT"
	}{
		{"one byte flipped", "INPUX"},
		{"truncated", "INP"},
		{"emptied", ""},
		{"appended to", "INPUT\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, _ := newEnv(t)
			in := env.Inputs["in"][0]
			if err := os.WriteFile(in.Path, []byte(tt.data), 0o644); err != nil {
				t.Fatal(err)
			}
			ran := filepath.Join(t.TempDir(), "ran")
			path := writeScript(t, scriptSpec, "touch '"+ran+"'; echo x > '"+env.OutputPath("out")+"'")
			stage, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			err = stage.Run(context.Background(), env)
			var de *artifacts.DigestError
			if !errors.As(err, &de) {
				t.Fatalf("Run error = %v, want an *artifacts.DigestError", err)
			}
			if de.Digest != in.Digest || de.Path != in.Path || de.Got != digestOf([]byte(tt.data)) {
				t.Errorf("DigestError{Digest: %s, Path: %s, Got: %s}, want {%s, %s, %s}",
					de.Digest, de.Path, de.Got, in.Digest, in.Path, digestOf([]byte(tt.data)))
			}
			if !errors.Is(err, artifacts.ErrCorrupt) || !strings.HasPrefix(err.Error(), `input "in"`) {
				t.Errorf("error %q: want it to wrap ErrCorrupt and name the port", err)
			}
			if _, err := os.Stat(ran); err == nil {
				t.Error("the plugin ran on a corrupt input")
			}
			if _, err := os.Stat(filepath.Join(env.OutDir, inputsDir)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s left in OutDir (%v)", inputsDir, err)
			}
		})
	}
}

// TestLinkedInputIsRefused: an object replaced by a symbolic link is not
// followed (it may point anywhere), even when the link's target holds the
// right bytes.
func TestLinkedInputIsRefused(t *testing.T) {
	env, _ := newEnv(t)
	in := env.Inputs["in"][0]
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.WriteFile(target, []byte("INPUT"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(in.Path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, in.Path); err != nil {
		t.Skipf("no symlinks here: %v", err)
	}
	stage, err := Open(writeScript(t, scriptSpec, "echo x > '"+env.OutputPath("out")+"'"))
	if err != nil {
		t.Fatal(err)
	}
	err = stage.Run(context.Background(), env)
	if !errors.Is(err, artifacts.ErrCorrupt) || !strings.Contains(err.Error(), in.Path+" is a symbolic link, not a regular file") {
		t.Errorf("Run error = %v, want one wrapping ErrCorrupt that says %s is a symbolic link", err, in.Path)
	}
}
