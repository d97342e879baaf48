//go:build !unix

package exec

import (
	osexec "os/exec"
	"time"
)

// processGroup is a no-op where process groups do not exist: cancelling
// kills the plugin process itself (os/exec's default).
type processGroup struct{}

func newProcessGroup(cmd *osexec.Cmd, grace time.Duration) *processGroup { return &processGroup{} }

func (g *processGroup) cleanup() {}
