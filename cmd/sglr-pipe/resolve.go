package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/sglr-pipe/sglr-pipe/pipeline"
	"github.com/sglr-pipe/sglr-pipe/stages"
	stageexec "github.com/sglr-pipe/sglr-pipe/stages/exec"
)

// execPrefix marks a `uses:` value naming an external executable stage.
const execPrefix = "exec:"

// newResolver resolves `uses:` values for a pipeline in baseDir: built-in
// stage names through the registry, and `exec:PATH` through exec.Open with a
// relative PATH taken from baseDir (the pipeline file's directory), so a
// pipeline means the same thing whatever the current directory is. Each
// executable is opened (and described) once.
func newResolver(baseDir string) pipeline.Resolver {
	builtin := pipeline.RegistryResolver(stages.Builtin)
	var mu sync.Mutex
	opened := map[string]stages.Stage{}
	return func(uses string) (stages.Stage, error) {
		if !strings.HasPrefix(uses, execPrefix) {
			return builtin(uses)
		}
		path := strings.TrimPrefix(uses, execPrefix)
		if path == "" {
			return nil, fmt.Errorf("%q names no executable (want exec:./path)", uses)
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(baseDir, path)
		}
		mu.Lock()
		defer mu.Unlock()
		if s, ok := opened[path]; ok {
			return s, nil
		}
		s, err := stageexec.Open(path) // its errors name the plugin
		if err != nil {
			return nil, err
		}
		opened[path] = s
		return s, nil
	}
}
