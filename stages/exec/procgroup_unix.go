//go:build unix

package exec

import (
	osexec "os/exec"
	"sync"
	"syscall"
	"time"
)

// processGroup makes a command the leader of its own process group, so that
// cancelling it also stops the children it started (a shell script's sleep,
// a Python plugin's workers).
type processGroup struct {
	cmd  *osexec.Cmd
	mu   sync.Mutex
	done bool
	kill *time.Timer
}

// newProcessGroup sets cmd up to run in a new process group. On cancel the
// group gets SIGTERM, then SIGKILL after grace if it is still there.
func newProcessGroup(cmd *osexec.Cmd, grace time.Duration) *processGroup {
	g := &processGroup{cmd: cmd}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		pid := cmd.Process.Pid
		err := syscall.Kill(-pid, syscall.SIGTERM)
		g.mu.Lock()
		defer g.mu.Unlock()
		if !g.done {
			g.kill = time.AfterFunc(grace, func() { g.signal(syscall.SIGKILL) })
		}
		return err
	}
	return g
}

// cleanup runs after Wait: it kills whatever the plugin left running in its
// group (a finished plugin owns nothing that should outlive it) and stops
// the pending SIGKILL timer.
func (g *processGroup) cleanup() {
	g.signal(syscall.SIGKILL)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.done = true
	if g.kill != nil {
		g.kill.Stop()
	}
}

func (g *processGroup) signal(sig syscall.Signal) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done || g.cmd.Process == nil {
		return
	}
	syscall.Kill(-g.cmd.Process.Pid, sig) // ESRCH when the group is already gone
}
