//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package artifacts

import (
	"errors"
	"syscall"
)

// errLeaseHeld says that another open file holds an entry's lease.
var errLeaseHeld = errors.New("leased by a running process")

// leasesEnforced reports whether leases lock anything on this platform.
const leasesEnforced = true

// lease is an flock(2) lock on one tmp/ entry, held through its own file
// descriptor. The descriptor is close-on-exec, so stage subprocesses do not
// inherit (and outlive us holding) the lock, and it is a bare descriptor
// rather than an *os.File so that no finalizer can drop the lock while the
// entry is still in use.
type lease struct{ fd int }

// lockEntry opens path (a directory or a regular file; never following a
// link, never blocking on a FIFO) and takes an exclusive flock on it, waiting
// for it when wait is set, or failing with errLeaseHeld when another open file
// holds it.
func lockEntry(path string, wait bool) (*lease, error) {
	var fd int
	err := retryEINTR(func() (err error) {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		return err
	})
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_EX
	if !wait {
		how |= syscall.LOCK_NB
	}
	if err := retryEINTR(func() error { return syscall.Flock(fd, how) }); err != nil {
		syscall.Close(fd)
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errLeaseHeld
		}
		return nil, err
	}
	return &lease{fd: fd}, nil
}

// stillAt reports whether path still names the file the lease locks.
func (l *lease) stillAt(path string) bool {
	var locked, named syscall.Stat_t
	if syscall.Fstat(l.fd, &locked) != nil || syscall.Lstat(path, &named) != nil {
		return false
	}
	return locked.Dev == named.Dev && locked.Ino == named.Ino
}

// release drops the lock; releasing twice, or a nil lease, is a no-op.
func (l *lease) release() {
	if l == nil || l.fd < 0 {
		return
	}
	syscall.Close(l.fd)
	l.fd = -1
}

// retryEINTR calls fn until it fails with something other than EINTR.
func retryEINTR(fn func() error) error {
	for {
		if err := fn(); !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
