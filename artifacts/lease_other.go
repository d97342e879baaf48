//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package artifacts

import (
	"errors"
	"os"
)

// Leases are flock(2) locks (lease_flock.go). Go's syscall package offers no
// flock on this platform, so leases lock nothing here: gc spares tmp/ entries
// by age (--grace) alone, and a stage that runs for longer than the grace can
// lose its scratch directory.

// errLeaseHeld says that another open file holds an entry's lease; it never
// happens here.
var errLeaseHeld = errors.New("leased by a running process")

// leasesEnforced reports whether leases lock anything on this platform.
const leasesEnforced = false

// lease stands in for a lock this platform cannot take.
type lease struct{}

// lockEntry only checks that path exists.
func lockEntry(path string, wait bool) (*lease, error) {
	if _, err := os.Lstat(path); err != nil {
		return nil, err
	}
	return &lease{}, nil
}

// stillAt reports whether path still exists.
func (l *lease) stillAt(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// release does nothing.
func (l *lease) release() {}
