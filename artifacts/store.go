package artifacts

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
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

// Put streams r into a new object and returns its digest.
func (s *DirStore) Put(r io.Reader) (Digest, error) {
	f, release, err := s.createLeasedTemp("put-*") // leased: gc spares a slow Put
	if err != nil {
		return "", fmt.Errorf("put object: %w", err)
	}
	defer release()
	tmp := f.Name()
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("put object: %w", err)
	}
	d := Digest(hex.EncodeToString(h.Sum(nil)))
	if err := s.placeObject(tmp, d); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("put object %s: %w", d, err)
	}
	return d, nil
}

// Ingest hashes a finished file (normally one made by CreateTemp or inside a
// TempDir) and moves it into the store. The file must not be written
// afterwards. Only a regular file is taken: a symbolic link is refused, never
// followed, and a file with other hard links (which could change under its
// digest through another name) is copied into the store by content rather
// than renamed.
func (s *DirStore) Ingest(tempPath string) (Digest, error) {
	f, info, err := openRegular(tempPath)
	if err != nil {
		return "", fmt.Errorf("ingest %s: %w", tempPath, err)
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	if err == nil {
		err = f.Sync()
	}
	f.Close()
	if err != nil {
		return "", fmt.Errorf("ingest %s: %w", tempPath, err)
	}
	d := Digest(hex.EncodeToString(h.Sum(nil)))
	if hardLinks(info) == 1 {
		err := s.placeObject(tempPath, d)
		if err == nil {
			return d, nil
		}
		if !errors.Is(err, errCrossDevice) {
			return "", fmt.Errorf("ingest %s: %w", tempPath, err)
		}
	}
	// Another file system or another name for the same file: copy the bytes
	// through Put, which writes a file of the store's own.
	src, _, err := openRegular(tempPath)
	if err != nil {
		return "", fmt.Errorf("ingest %s: %w", tempPath, err)
	}
	defer src.Close()
	got, err := s.Put(src)
	if err != nil {
		return "", fmt.Errorf("ingest %s: %w", tempPath, err)
	}
	if got != d {
		return "", fmt.Errorf("ingest %s: file changed while it was ingested", tempPath)
	}
	os.Remove(tempPath)
	return d, nil
}

// CreateTemp creates an empty file in the store's tmp/ directory and returns its path.
// The file is not leased (the store keeps nothing open once it returns): gc
// spares it by age alone, and every write refreshes its mtime, so a file
// written steadily is safe under any grace; a caller that may pause for longer
// than gc's grace writes inside a Scratch instead.
func (s *DirStore) CreateTemp(pattern string) (string, error) {
	f, err := os.CreateTemp(s.tmpDir(), pattern)
	if err != nil {
		return "", fmt.Errorf("create temp file: %w", err)
	}
	name := f.Name()
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("create temp file %s: %w", name, err)
	}
	return name, nil
}

// TempDir makes a scratch directory under tmp/; the caller removes it. The
// directory is not leased, and writing files inside it does not refresh its
// mtime, so gc removes it once it is older than its grace even while in use:
// anything that may run for longer than that (every stage) uses Scratch.
func (s *DirStore) TempDir(pattern string) (string, error) {
	dir, err := os.MkdirTemp(s.tmpDir(), pattern)
	if err != nil {
		return "", fmt.Errorf("create temp dir: %w", err)
	}
	return dir, nil
}

// Has reports whether the object exists as a regular file (a link in its
// place does not count), without re-hashing it.
func (s *DirStore) Has(d Digest) bool {
	if !isHex64(string(d)) {
		return false
	}
	info, err := os.Lstat(s.objectPath(d))
	return err == nil && info.Mode().IsRegular()
}

// Path returns the file path of an existing object; callers must not write to it.
func (s *DirStore) Path(d Digest) (string, error) {
	if !isHex64(string(d)) {
		return "", fmt.Errorf("object %q: invalid digest", d)
	}
	p := s.objectPath(d)
	if _, err := os.Stat(p); err != nil {
		return "", objectError(d, err)
	}
	return p, nil
}

// Open reads an object whole, hashing it as it is read, and returns its
// bytes for reading; bytes that no longer hash to d give a *DigestError.
func (s *DirStore) Open(d Digest) (ReadAtSeekCloser, error) {
	if !isHex64(string(d)) {
		return nil, fmt.Errorf("object %q: invalid digest", d)
	}
	data, err := ReadVerified(s.objectPath(d), d)
	if err != nil {
		return nil, err
	}
	return verifiedObject{bytes.NewReader(data)}, nil
}

// Verify re-hashes an object; a mismatch is an error wrapping ErrCorrupt.
func (s *DirStore) Verify(d Digest) error {
	if !isHex64(string(d)) {
		return fmt.Errorf("object %q: invalid digest", d)
	}
	_, err := hashFile(s.objectPath(d), d)
	return err
}

// GetAction returns the action recorded under key, or an error wrapping
// ErrNotFound; an undecodable entry is an error wrapping ErrCorrupt.
func (s *DirStore) GetAction(key string) (*Action, error) {
	if key == "" {
		return nil, errors.New("get action: empty key")
	}
	p := s.actionPath(key)
	a, err := readActionFile(p)
	if err != nil {
		return nil, fmt.Errorf("action %s: %w", key, err)
	}
	if a.Key != key {
		return nil, fmt.Errorf("action %s: %s holds key %q: %w", key, p, a.Key, ErrCorrupt)
	}
	return a, nil
}

// PutAction records an action atomically under a.Key.
func (s *DirStore) PutAction(a *Action) error {
	if a == nil || a.Key == "" {
		return errors.New("put action: empty key")
	}
	data, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return fmt.Errorf("put action %s: %w", a.Key, err)
	}
	if err := s.writeFileAtomic(s.actionPath(a.Key), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("put action %s: %w", a.Key, err)
	}
	return nil
}

// RemoveAction deletes the action recorded under key; a missing one is ErrNotFound.
func (s *DirStore) RemoveAction(key string) error {
	if err := os.Remove(s.actionPath(key)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("action %s: %w", key, ErrNotFound)
		}
		return fmt.Errorf("remove action %s: %w", key, err)
	}
	return nil
}

// RemoveObject deletes an object; a missing one is ErrNotFound.
func (s *DirStore) RemoveObject(d Digest) error {
	if !isHex64(string(d)) {
		return fmt.Errorf("object %q: invalid digest", d)
	}
	if err := os.Remove(s.objectPath(d)); err != nil {
		return objectError(d, err)
	}
	return nil
}

// ListObjects returns the digests of all objects, sorted.
func (s *DirStore) ListObjects() ([]Digest, error) {
	var out []Digest
	err := s.walkObjects(func(d Digest, path string, info fs.FileInfo) error {
		out = append(out, d)
		return nil
	}, nil)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListActions decodes every action entry, sorted by key. Entries that cannot be
// decoded are skipped and reported together in an error wrapping ErrCorrupt,
// returned alongside the actions that could be read.
func (s *DirStore) ListActions() ([]*Action, error) {
	var out []*Action
	var bad []error
	err := s.walkActions(func(path string) error {
		a, err := readActionFile(path)
		if err != nil {
			bad = append(bad, err)
			return nil
		}
		out = append(out, a)
		return nil
	}, nil)
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, errors.Join(bad...)
}

// PutRun stores a run record under r.ID (see NewRunID).
func (s *DirStore) PutRun(r *Run) error {
	if r == nil {
		return errors.New("put run: nil run")
	}
	if err := checkRunID(r.ID); err != nil {
		return fmt.Errorf("put run: %w", err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("put run %s: %w", r.ID, err)
	}
	if err := s.writeFileAtomic(s.runPath(r.ID), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("put run %s: %w", r.ID, err)
	}
	return nil
}

// GetRun reads a run record; id "latest" names the newest run.
func (s *DirStore) GetRun(id string) (*Run, error) {
	if id == "latest" {
		return s.latestRun()
	}
	if err := checkRunID(id); err != nil {
		return nil, fmt.Errorf("get run: %w", err)
	}
	r, err := readRunFile(s.runPath(id))
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", id, err)
	}
	return r, nil
}

// ListRuns returns run ids, oldest first (ids made by NewRunID sort by time).
func (s *DirStore) ListRuns() ([]string, error) {
	entries, err := os.ReadDir(s.runsDir())
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	var ids []string
	for _, e := range entries {
		name := e.Name()
		if e.Type().IsRegular() && strings.HasSuffix(name, ".json") {
			ids = append(ids, strings.TrimSuffix(name, ".json"))
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// SetRef stores value under name atomically.
func (s *DirStore) SetRef(name, value string) error {
	if name == "" {
		return errors.New("set ref: empty name")
	}
	data, err := json.Marshal(refRecord{Name: name, Value: value})
	if err != nil {
		return fmt.Errorf("set ref %q: %w", name, err)
	}
	if err := s.writeFileAtomic(s.refPath(name), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("set ref %q: %w", name, err)
	}
	return nil
}

// GetRef returns the value stored under name, or an error wrapping ErrNotFound.
func (s *DirStore) GetRef(name string) (string, error) {
	p := s.refPath(name)
	ref, err := readRefFile(p)
	if err != nil {
		return "", fmt.Errorf("ref %q: %w", name, err)
	}
	if ref.Name != name {
		return "", fmt.Errorf("ref %q: %s holds ref %q: %w", name, p, ref.Name, ErrCorrupt)
	}
	return ref.Value, nil
}

// refRecord is the JSON form of a ref; the name is kept to detect mix-ups.
type refRecord struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// errCrossDevice marks a rename that failed because source and target are on
// different file systems.
var errCrossDevice = errors.New("cross-device rename")

func (s *DirStore) objectsDir() string { return filepath.Join(s.root, "objects", "sha256") }
func (s *DirStore) actionsDir() string { return filepath.Join(s.root, "actions") }
func (s *DirStore) runsDir() string    { return filepath.Join(s.root, "runs") }
func (s *DirStore) refsDir() string    { return filepath.Join(s.root, "refs") }
func (s *DirStore) tmpDir() string     { return filepath.Join(s.root, "tmp") }

func (s *DirStore) objectPath(d Digest) string {
	return filepath.Join(s.objectsDir(), string(d[:2]), string(d[2:]))
}

// actionPath names an action file by its key when the key is already a
// sha256 hex string, and by the sha256 of the key otherwise.
func (s *DirStore) actionPath(key string) string {
	name := key
	if !isHex64(name) {
		name = sha256Hex(key)
	}
	return filepath.Join(s.actionsDir(), name[:2], name[2:]+".json")
}

func (s *DirStore) runPath(id string) string { return filepath.Join(s.runsDir(), id+".json") }

func (s *DirStore) refPath(name string) string {
	return filepath.Join(s.refsDir(), sha256Hex(name)+".json")
}

// placeObject makes tmp read-only and renames it over the object's final name.
// Renaming over an existing object replaces it with equal (or, if the old one
// was corrupt, correct) bytes.
func (s *DirStore) placeObject(tmp string, d Digest) error {
	if err := os.Chmod(tmp, 0o444); err != nil {
		return err
	}
	final := s.objectPath(d)
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		var linkErr *os.LinkError
		if errors.As(err, &linkErr) && isCrossDevice(linkErr.Err) {
			return fmt.Errorf("%w: %v", errCrossDevice, err)
		}
		return err
	}
	return syncDir(dir)
}

// writeFileAtomic writes data to path through a fsynced temporary file and a rename.
func (s *DirStore) writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, release, err := s.createLeasedTemp("write-*")
	if err != nil {
		return err
	}
	defer release()
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, perm)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// latestRun returns the newest run. Ids sort by their time prefix; runs that
// share the newest second are ordered by their recorded start time.
func (s *DirStore) latestRun() (*Run, error) {
	ids, err := s.ListRuns()
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("latest run: no runs recorded: %w", ErrNotFound)
	}
	last := ids[len(ids)-1]
	prefix, _, _ := strings.Cut(last, "-")
	var best *Run
	for i := len(ids) - 1; i >= 0; i-- {
		if p, _, _ := strings.Cut(ids[i], "-"); p != prefix {
			break
		}
		r, err := s.GetRun(ids[i])
		if err != nil {
			return nil, fmt.Errorf("latest run: %w", err)
		}
		if best == nil || r.Started.After(best.Started) {
			best = r
		}
	}
	return best, nil
}

// walkObjects calls fn for every well-named object file and bad for any other
// entry under objects/ (bad may be nil to ignore them).
func (s *DirStore) walkObjects(fn func(d Digest, path string, info fs.FileInfo) error, bad func(path, why string)) error {
	fans, err := os.ReadDir(s.objectsDir())
	if err != nil {
		return fmt.Errorf("list objects: %w", err)
	}
	for _, fan := range fans {
		fanPath := filepath.Join(s.objectsDir(), fan.Name())
		if !fan.IsDir() || len(fan.Name()) != 2 || !isHex(fan.Name()) {
			if bad != nil {
				bad(fanPath, "unexpected entry in objects/sha256")
			}
			continue
		}
		entries, err := os.ReadDir(fanPath)
		if err != nil {
			return fmt.Errorf("list objects: %w", err)
		}
		for _, e := range entries {
			p := filepath.Join(fanPath, e.Name())
			name := fan.Name() + e.Name()
			if !e.Type().IsRegular() || !isHex64(name) {
				if bad != nil {
					bad(p, "unexpected entry in objects/sha256")
				}
				continue
			}
			info, err := e.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // removed meanwhile
				}
				return fmt.Errorf("list objects: %w", err)
			}
			if err := fn(Digest(name), p, info); err != nil {
				return err
			}
		}
	}
	return nil
}

// walkActions calls fn with the path of every action file and bad for any other entry.
func (s *DirStore) walkActions(fn func(path string) error, bad func(path, why string)) error {
	fans, err := os.ReadDir(s.actionsDir())
	if err != nil {
		return fmt.Errorf("list actions: %w", err)
	}
	for _, fan := range fans {
		fanPath := filepath.Join(s.actionsDir(), fan.Name())
		if !fan.IsDir() || len(fan.Name()) != 2 || !isHex(fan.Name()) {
			if bad != nil {
				bad(fanPath, "unexpected entry in actions")
			}
			continue
		}
		entries, err := os.ReadDir(fanPath)
		if err != nil {
			return fmt.Errorf("list actions: %w", err)
		}
		for _, e := range entries {
			p := filepath.Join(fanPath, e.Name())
			base, isJSON := strings.CutSuffix(e.Name(), ".json")
			if !e.Type().IsRegular() || !isJSON || !isHex64(fan.Name()+base) {
				if bad != nil {
					bad(p, "unexpected entry in actions")
				}
				continue
			}
			if err := fn(p); err != nil {
				return err
			}
		}
	}
	return nil
}

func readActionFile(path string) (*Action, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", path, ErrNotFound)
		}
		return nil, err
	}
	var a Action
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("decode %s: %v: %w", path, err, ErrCorrupt)
	}
	if a.Key == "" {
		return nil, fmt.Errorf("decode %s: no key: %w", path, ErrCorrupt)
	}
	for port, d := range a.Outputs {
		if !isHex64(string(d)) {
			return nil, fmt.Errorf("decode %s: output %q has invalid digest %q: %w", path, port, d, ErrCorrupt)
		}
	}
	return &a, nil
}

func readRunFile(path string) (*Run, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", path, ErrNotFound)
		}
		return nil, err
	}
	var r Run
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decode %s: %v: %w", path, err, ErrCorrupt)
	}
	return &r, nil
}

func readRefFile(path string) (*refRecord, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", path, ErrNotFound)
		}
		return nil, err
	}
	var ref refRecord
	if err := json.Unmarshal(data, &ref); err != nil {
		return nil, fmt.Errorf("decode %s: %v: %w", path, err, ErrCorrupt)
	}
	return &ref, nil
}

// hashFile re-hashes path, returning its size; a digest other than want is ErrCorrupt.
func hashFile(path string, want Digest) (int64, error) {
	f, _, err := openObject(path, want)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return n, fmt.Errorf("object %s: read: %w", want, err)
	}
	if got := Digest(hex.EncodeToString(h.Sum(nil))); got != want {
		return n, &DigestError{Digest: want, Path: path, Got: got}
	}
	return n, nil
}

func objectError(d Digest, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("object %s: %w", d, ErrNotFound)
	}
	return fmt.Errorf("object %s: %w", d, err)
}

func checkRunID(id string) error {
	if id == "" || id == "latest" || id == "." || id == ".." || strings.ContainsAny(id, `/\`+"\x00") {
		return fmt.Errorf("invalid run id %q", id)
	}
	return nil
}

func isCrossDevice(err error) bool { return errors.Is(err, syscall.EXDEV) }

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
