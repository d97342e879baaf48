package artifacts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Entries of tmp/ that a live process is using carry a lease: an exclusive
// advisory lock (flock(2) where the platform has it, see lease_flock.go) on the
// entry itself, held for as long as the entry is in use. GC and Check probe
// the lock without waiting and leave a leased entry alone, whatever its age,
// so a stage that runs for longer than gc's grace keeps its scratch
// directory. The kernel drops the lock when the holder exits, even on
// SIGKILL, so a crashed run's leftovers become collectable at once (once
// older than the grace) with no stale lock files to clean up.
//
// A lease is taken on an entry that already exists, so there is a moment
// between creating an entry and locking it. GC holds the lock while it removes
// an entry, and the creator checks, once it has the lock, that the entry is
// still at its path; if GC took it in that moment the creator makes a fresh
// one (leaseAttempts times at most).
const leaseAttempts = 10

// errLeaseLost says that the entry being leased was removed (by GC) before
// its creator could lock it.
var errLeaseLost = errors.New("removed by a concurrent gc before it could be leased")

// Scratch is a scratch directory in a store's tmp/ that the store holds a
// lease on until Remove: `cache gc` never removes it while it is held, however
// long the stage using it runs. A process that dies without calling Remove
// loses the lease with its life, and gc collects the directory once it is
// older than the grace.
type Scratch struct {
	// Path is the directory's absolute path.
	Path  string
	lease *lease
}

// Scratch makes a leased scratch directory under tmp/, named by pattern as
// os.MkdirTemp does (e.g. "stage-*"). The caller calls Remove when done;
// until then gc leaves the directory alone.
func (s *DirStore) Scratch(pattern string) (*Scratch, error) {
	for range leaseAttempts {
		dir, err := os.MkdirTemp(s.tmpDir(), pattern)
		if err != nil {
			return nil, fmt.Errorf("create scratch dir: %w", err)
		}
		l, err := acquireLease(dir)
		if errors.Is(err, errLeaseLost) {
			continue
		}
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("create scratch dir %s: lease: %w", dir, err)
		}
		return &Scratch{Path: dir, lease: l}, nil
	}
	return nil, fmt.Errorf("create scratch dir in %s: %w, %d times in a row", s.tmpDir(), errLeaseLost, leaseAttempts)
}

// Remove deletes the scratch directory with everything in it and then
// releases its lease (in that order, so gc never sees a half-removed
// directory unleased). It may be called more than once.
func (sc *Scratch) Remove() error {
	if sc == nil || sc.Path == "" {
		return nil
	}
	err := os.RemoveAll(sc.Path)
	sc.lease.release()
	if err != nil {
		return fmt.Errorf("remove scratch dir %s: %w", sc.Path, err)
	}
	return nil
}

// createLeasedTemp creates a file in tmp/ (os.CreateTemp with pattern) and
// leases it, so that gc leaves it alone until release is called, however slow
// the writer is. The lease is on the file, not on f, so it outlives f.Close
// and a rename of the file into place: call release after the rename.
func (s *DirStore) createLeasedTemp(pattern string) (f *os.File, release func(), err error) {
	for range leaseAttempts {
		f, err := os.CreateTemp(s.tmpDir(), pattern)
		if err != nil {
			return nil, nil, err
		}
		l, err := acquireLease(f.Name())
		if errors.Is(err, errLeaseLost) {
			f.Close()
			continue
		}
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, nil, fmt.Errorf("lease %s: %w", f.Name(), err)
		}
		return f, l.release, nil
	}
	return nil, nil, fmt.Errorf("create temp file in %s: %w, %d times in a row", s.tmpDir(), errLeaseLost, leaseAttempts)
}

// acquireLease locks the existing entry at path, waiting out a gc or check
// that is probing it, and makes sure it is still there once locked.
func acquireLease(path string) (*lease, error) {
	l, err := lockEntry(path, true)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errLeaseLost
	}
	if err != nil {
		return nil, err
	}
	if !l.stillAt(path) {
		l.release()
		return nil, errLeaseLost
	}
	return l, nil
}

// probeTmpEntry reports whether the tmp/ entry e (in dir) is leased by a live
// process. When it is not, it returns the lease it took, which the caller
// holds while it removes the entry and then releases. Only directories and
// regular files are probed: nothing else in tmp/ is ever leased.
func probeTmpEntry(dir string, e fs.DirEntry) (l *lease, inUse bool, err error) {
	if !e.IsDir() && !e.Type().IsRegular() {
		return nil, false, nil
	}
	l, err = lockEntry(filepath.Join(dir, e.Name()), false)
	if errors.Is(err, errLeaseHeld) {
		return nil, true, nil
	}
	return l, false, err
}
