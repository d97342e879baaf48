package artifacts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The DirStore's small records: action-cache entries, run records and refs,
// JSON files each replaced atomically.

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
	data, err := marshalRun(r)
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

// writeFileAtomic writes data to path as WriteFileAtomic does, creating
// path's directory if needed, but through a leased file in tmp/ so that a
// concurrent gc does not remove it mid-write.
func (s *DirStore) writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, release, err := s.createLeasedTemp("write-*")
	if err != nil {
		return err
	}
	defer release()
	return replaceWith(f, path, perm, writeBytes(data))
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

func checkRunID(id string) error {
	if id == "" || id == "latest" || id == "." || id == ".." || strings.ContainsAny(id, `/\`+"\x00") {
		return fmt.Errorf("invalid run id %q", id)
	}
	return nil
}
