package artifacts

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// DirStore is a Store on a local directory, laid out as in DESIGN.md:
//
//	objects/sha256/<2>/<62>   immutable artifacts named by the sha256 of their bytes
//	actions/<2>/<62>.json     action-cache entries named by their key
//	runs/<run-id>.json        run records
//	refs/<sha256(name)>.json  small named pointers
//	tmp/                      scratch files and directories, renamed into place when done
//
// Every write goes to a file in tmp/ that is fsynced and renamed over its final
// name, and the parent directory is fsynced, so a crash never leaves a half file
// under a final name. Concurrent writers of the same object or action are
// harmless: they write equal bytes and the last rename wins.
type DirStore struct {
	root string
}

var _ Store = (*DirStore)(nil)

// OpenDir opens the store rooted at root, creating its directory layout if needed.
func OpenDir(root string) (*DirStore, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	s := &DirStore{root: abs}
	for _, dir := range []string{s.objectsDir(), s.actionsDir(), s.runsDir(), s.refsDir(), s.tmpDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open store %s: %w", root, err)
		}
	}
	return s, nil
}

// Root returns the absolute path of the store directory.
func (s *DirStore) Root() string { return s.root }

// NewRunID returns a run id that sorts by time: the UTC time to the second, a
// dash and 6 random hex digits (e.g. "20261126T110405Z-3fa9c1"), so that runs
// started in the same second still get distinct ids.
func NewRunID(t time.Time) string {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand never fails on supported platforms; fall back to the clock.
		ns := t.Nanosecond()
		b = [3]byte{byte(ns >> 16), byte(ns >> 8), byte(ns)}
	}
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// ParseDigest checks that s is a lowercase hex sha256 and returns it as a Digest.
func ParseDigest(s string) (Digest, error) {
	if !isHex64(s) {
		return "", fmt.Errorf("invalid digest %q: want 64 lowercase hex digits", s)
	}
	return Digest(s), nil
}

func (s *DirStore) objectsDir() string { return filepath.Join(s.root, "objects", "sha256") }
func (s *DirStore) actionsDir() string { return filepath.Join(s.root, "actions") }
func (s *DirStore) runsDir() string    { return filepath.Join(s.root, "runs") }
func (s *DirStore) refsDir() string    { return filepath.Join(s.root, "refs") }
func (s *DirStore) tmpDir() string     { return filepath.Join(s.root, "tmp") }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func isHex64(s string) bool { return len(s) == 64 && isHex(s) }

// isHex reports whether s is made only of lowercase hex digits.
func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
