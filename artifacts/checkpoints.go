package artifacts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// CheckpointStore is implemented by stores that keep stages' checkpoints
// (DirStore, under checkpoints/<family>/). Checkpoints are not objects: a
// stage rewrites them as it goes and checks them itself when it reads them
// back (train: a sha256 trailer), and they never enter a cache key or an
// action. A shared store (NATS) has none, so work it runs is not resumed.
type CheckpointStore interface {
	// CheckpointDir returns the directory of family's checkpoints,
	// creating it if needed.
	CheckpointDir(family string) (string, error)
	// ExistingCheckpointDir returns that directory when it exists, without
	// creating it (plan looks; it does not write).
	ExistingCheckpointDir(family string) (string, bool)
}

var _ CheckpointStore = (*DirStore)(nil)

// CheckpointDir implements CheckpointStore. family must be a 64-hex name
// (pipeline.ResumeFamily), so that it cannot name a path outside the store.
func (s *DirStore) CheckpointDir(family string) (string, error) {
	if !isHex64(family) {
		return "", fmt.Errorf("checkpoint family %q: want 64 lowercase hex digits", family)
	}
	dir := filepath.Join(s.checkpointsDir(), family)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("checkpoint directory: %w", err)
	}
	return dir, nil
}

// ExistingCheckpointDir implements CheckpointStore.
func (s *DirStore) ExistingCheckpointDir(family string) (string, bool) {
	if !isHex64(family) {
		return "", false
	}
	dir := filepath.Join(s.checkpointsDir(), family)
	info, err := os.Lstat(dir)
	return dir, err == nil && info.IsDir()
}

// RemoveCheckpoints deletes every checkpoint of the store (`cache gc
// --checkpoints`) and returns how many bytes it freed. A run in progress
// rewrites its checkpoint at the next one it saves, so this is harmless to
// it beyond losing what it could have resumed from.
func (s *DirStore) RemoveCheckpoints() (int64, error) {
	var freed int64
	err := filepath.WalkDir(s.checkpointsDir(), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				freed += info.Size()
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("remove checkpoints: %w", err)
	}
	if err := os.RemoveAll(s.checkpointsDir()); err != nil {
		return 0, fmt.Errorf("remove checkpoints: %w", err)
	}
	return freed, nil
}

func (s *DirStore) checkpointsDir() string { return filepath.Join(s.root, "checkpoints") }
