package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// CheckOptions choose how deep Check looks.
type CheckOptions struct {
	// ReadData re-hashes every object; without it objects are only listed.
	ReadData bool
}

// ProblemKind classifies a problem found by Check or GC.
type ProblemKind string

// The problems Check and GC report.
const (
	ProblemMissingObject ProblemKind = "missing-object" // an action names an object that does not exist
	ProblemCorruptObject ProblemKind = "corrupt-object" // an object's bytes do not hash to its name
	ProblemCorruptAction ProblemKind = "corrupt-action" // an action file cannot be decoded or sits under the wrong name
	ProblemCorruptRun    ProblemKind = "corrupt-run"    // a run record cannot be decoded
	ProblemCorruptRef    ProblemKind = "corrupt-ref"    // a ref file cannot be decoded
	ProblemStrayTmp      ProblemKind = "stray-tmp"      // a leftover in tmp/ (from a crash, or a write in progress)
	ProblemStrayFile     ProblemKind = "stray-file"     // a file that does not belong in the layout
	ProblemIO            ProblemKind = "io"             // a file could not be read or removed
)

// Problem is one finding, naming the file it concerns.
type Problem struct {
	Kind   ProblemKind `json:"kind"`
	Path   string      `json:"path"`
	Detail string      `json:"detail"`
}

// String renders the problem as "kind path: detail".
func (p Problem) String() string { return fmt.Sprintf("%s %s: %s", p.Kind, p.Path, p.Detail) }

// CheckReport is the outcome of Check: what was looked at and what is wrong.
type CheckReport struct {
	Objects    int       `json:"objects"`
	Actions    int       `json:"actions"`
	Runs       int       `json:"runs"`
	Refs       int       `json:"refs"`
	TmpEntries int       `json:"tmp_entries"`
	BytesRead  int64     `json:"bytes_read"` // object bytes re-hashed (ReadData only)
	Problems   []Problem `json:"problems"`
}

// OK reports whether Check found nothing wrong.
func (r *CheckReport) OK() bool { return len(r.Problems) == 0 }

// Check inspects the whole store, in the manner of restic's checker: actions
// naming missing objects, corrupt objects (when opts.ReadData), undecodable
// action, run and ref files, and leftovers in tmp/. A file problem goes into the
// report; the returned error is only for failures to read the store itself or
// a cancelled ctx. Entries in tmp/ are also reported while another process is
// writing, so run Check on a quiet store.
func (s *DirStore) Check(ctx context.Context, opts CheckOptions) (*CheckReport, error) {
	rep := &CheckReport{}
	bad := func(kind ProblemKind) func(path, why string) {
		return func(path, why string) { rep.add(kind, path, why) }
	}

	present := map[Digest]bool{}
	err := s.walkObjects(func(d Digest, path string, info fs.FileInfo) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		rep.Objects++
		present[d] = true
		if !opts.ReadData {
			return nil
		}
		n, err := hashFile(path, d)
		rep.BytesRead += n
		switch {
		case errors.Is(err, ErrCorrupt):
			rep.add(ProblemCorruptObject, path, err.Error())
		case err != nil:
			rep.add(ProblemIO, path, err.Error())
		}
		return nil
	}, bad(ProblemStrayFile))
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", s.root, err)
	}

	err = s.walkActions(func(path string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		rep.Actions++
		a, err := readActionFile(path)
		if err != nil {
			rep.add(ProblemCorruptAction, path, err.Error())
			return nil
		}
		if want := s.actionPath(a.Key); want != path {
			rep.add(ProblemCorruptAction, path, fmt.Sprintf("holds key %q, which belongs in %s", a.Key, want))
			return nil
		}
		for _, port := range slices.Sorted(maps.Keys(a.Outputs)) {
			if d := a.Outputs[port]; !present[d] {
				rep.add(ProblemMissingObject, path, fmt.Sprintf("output %q names missing object %s", port, d))
			}
		}
		return nil
	}, bad(ProblemStrayFile))
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", s.root, err)
	}

	if err := s.checkFlatDir(ctx, s.runsDir(), &rep.Runs, ProblemCorruptRun, func(path string) error {
		_, err := readRunFile(path)
		return err
	}, rep); err != nil {
		return nil, fmt.Errorf("check %s: %w", s.root, err)
	}
	if err := s.checkFlatDir(ctx, s.refsDir(), &rep.Refs, ProblemCorruptRef, func(path string) error {
		_, err := readRefFile(path)
		return err
	}, rep); err != nil {
		return nil, fmt.Errorf("check %s: %w", s.root, err)
	}

	tmps, err := os.ReadDir(s.tmpDir())
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", s.root, err)
	}
	for _, e := range tmps {
		rep.TmpEntries++
		path := filepath.Join(s.tmpDir(), e.Name())
		l, inUse, err := probeTmpEntry(s.tmpDir(), e)
		l.release()
		switch {
		case inUse:
			rep.add(ProblemStrayTmp, path, "in use by a running process (leased)")
		case errors.Is(err, fs.ErrNotExist):
			rep.TmpEntries-- // finished and removed while we looked
		default:
			rep.add(ProblemStrayTmp, path, "leftover temporary entry")
		}
	}
	return rep, nil
}

// GCOptions choose what GC removes.
type GCOptions struct {
	// DryRun reports what would be removed without removing it.
	DryRun bool
	// TmpOlderThan removes entries of tmp/ last modified longer ago than this;
	// zero removes every entry that is not leased. Entries a live process
	// leases (a running stage's Scratch, a Put or record write in progress)
	// are never removed, whatever their age; files made by CreateTemp are not
	// leased and are spared by age alone.
	TmpOlderThan time.Duration
	// ObjectsOlderThan spares unreferenced objects modified more recently than
	// this, so that GC can run beside a run that has Put an object but not yet
	// recorded the action naming it. Zero spares none.
	ObjectsOlderThan time.Duration
}

// GCReport is the outcome of GC.
type GCReport struct {
	ObjectsKept    int       `json:"objects_kept"`
	ObjectsRemoved int       `json:"objects_removed"` // or that would be removed, in a dry run
	BytesFreed     int64     `json:"bytes_freed"`
	TmpRemoved     int       `json:"tmp_removed"`
	TmpInUse       int       `json:"tmp_in_use"` // tmp/ entries old enough to go but leased by a live process
	Removed        []string  `json:"removed"`    // paths removed (or to remove)
	InUse          []string  `json:"in_use"`     // the leased tmp/ entries spared
	Problems       []Problem `json:"problems"`
}

// GC removes objects that no decodable action names (as an output or an
// input) and stale entries of tmp/: older than opts.TmpOlderThan and not
// leased by a live process. Undecodable actions are reported as problems and
// protect nothing: a corrupt action is a cache miss anyway.
func (s *DirStore) GC(ctx context.Context, opts GCOptions) (*GCReport, error) {
	rep := &GCReport{}
	now := time.Now()

	referenced := map[Digest]bool{}
	err := s.walkActions(func(path string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		a, err := readActionFile(path)
		if err != nil {
			rep.Problems = append(rep.Problems, Problem{ProblemCorruptAction, path, err.Error()})
			return nil
		}
		for _, d := range a.Outputs {
			referenced[d] = true
		}
		for _, ds := range a.Inputs {
			for _, d := range ds {
				referenced[d] = true
			}
		}
		return nil
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("gc %s: %w", s.root, err)
	}

	err = s.walkObjects(func(d Digest, path string, info fs.FileInfo) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if referenced[d] || now.Sub(info.ModTime()) < opts.ObjectsOlderThan {
			rep.ObjectsKept++
			return nil
		}
		if !opts.DryRun {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				rep.Problems = append(rep.Problems, Problem{ProblemIO, path, err.Error()})
				return nil
			}
		}
		rep.ObjectsRemoved++
		rep.BytesFreed += info.Size()
		rep.Removed = append(rep.Removed, path)
		return nil
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("gc %s: %w", s.root, err)
	}

	tmps, err := os.ReadDir(s.tmpDir())
	if err != nil {
		return nil, fmt.Errorf("gc %s: %w", s.root, err)
	}
	for _, e := range tmps {
		path := filepath.Join(s.tmpDir(), e.Name())
		info, err := e.Info()
		if err != nil || now.Sub(info.ModTime()) < opts.TmpOlderThan {
			continue
		}
		// Hold the entry's lease while removing it, so that a process that
		// has just created it and is about to lease it sees it gone and makes
		// another, rather than working in a directory gc is deleting.
		l, inUse, err := probeTmpEntry(s.tmpDir(), e)
		switch {
		case inUse:
			rep.TmpInUse++
			rep.InUse = append(rep.InUse, path)
			continue
		case errors.Is(err, fs.ErrNotExist):
			continue // finished and removed meanwhile
		case err != nil:
			rep.Problems = append(rep.Problems, Problem{ProblemIO, path, "cannot tell whether it is in use: " + err.Error()})
			continue
		}
		if !opts.DryRun {
			err := os.RemoveAll(path)
			l.release()
			if err != nil {
				rep.Problems = append(rep.Problems, Problem{ProblemIO, path, err.Error()})
				continue
			}
		}
		l.release()
		rep.TmpRemoved++
		rep.Removed = append(rep.Removed, path)
	}
	return rep, nil
}

func (r *CheckReport) add(kind ProblemKind, path, detail string) {
	r.Problems = append(r.Problems, Problem{Kind: kind, Path: path, Detail: detail})
}

// checkFlatDir decodes every *.json file of dir with decode, counting them in
// *count and reporting failures as kind; other entries are stray files.
func (s *DirStore) checkFlatDir(ctx context.Context, dir string, count *int, kind ProblemKind, decode func(string) error, rep *CheckReport) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		path := filepath.Join(dir, e.Name())
		if !e.Type().IsRegular() || filepath.Ext(e.Name()) != ".json" {
			rep.add(ProblemStrayFile, path, "unexpected entry")
			continue
		}
		*count++
		if err := decode(path); err != nil {
			rep.add(kind, path, err.Error())
		}
	}
	return nil
}
