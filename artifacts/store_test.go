package artifacts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func openTestStore(t *testing.T) *DirStore {
	t.Helper()
	s, err := OpenDir(filepath.Join(t.TempDir(), ".sglr"))
	if err != nil {
		t.Fatalf("OpenDir: %v", err)
	}
	return s
}

func digestOf(b []byte) Digest {
	sum := sha256.Sum256(b)
	return Digest(hex.EncodeToString(sum[:]))
}

func putBytes(t *testing.T, s *DirStore, b []byte) Digest {
	t.Helper()
	d, err := s.Put(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return d
}

func TestOpenDirCreatesLayout(t *testing.T) {
	s := openTestStore(t)
	for _, dir := range []string{"objects/sha256", "actions", "runs", "refs", "tmp"} {
		if info, err := os.Stat(filepath.Join(s.Root(), dir)); err != nil || !info.IsDir() {
			t.Errorf("%s: not a directory (%v)", dir, err)
		}
	}
	if _, err := OpenDir(s.Root()); err != nil {
		t.Errorf("reopening an existing store: %v", err)
	}
}

func TestPutOpenVerify(t *testing.T) {
	s := openTestStore(t)
	data := []byte("hello artifacts")
	d := putBytes(t, s, data)
	if d != digestOf(data) {
		t.Fatalf("digest %s, want %s", d, digestOf(data))
	}
	path, err := s.Path(d)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(s.Root(), "objects", "sha256", string(d[:2]), string(d[2:])); path != want {
		t.Errorf("object at %s, want %s", path, want)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o444 {
		t.Errorf("object mode %v, want read-only 0444", info.Mode().Perm())
	}
	if !s.Has(d) {
		t.Error("Has = false after Put")
	}
	f, err := s.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(got, data) {
		t.Errorf("read back %q", got)
	}
	if err := s.Verify(d); err != nil {
		t.Errorf("Verify of a good object: %v", err)
	}
	if d2 := putBytes(t, s, data); d2 != d {
		t.Errorf("second Put gave %s", d2)
	}
	assertTmpEmpty(t, s)

	missing := digestOf([]byte("absent"))
	if s.Has(missing) {
		t.Error("Has = true for an absent object")
	}
	if _, err := s.Open(missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open of absent object: %v, want ErrNotFound", err)
	}
	if err := s.Verify(missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("Verify of absent object: %v, want ErrNotFound", err)
	}
	for _, bad := range []Digest{"", "abc", Digest(strings.Repeat("G", 64)), "../../etc/passwd"} {
		if s.Has(bad) {
			t.Errorf("Has(%q) = true", bad)
		}
		if _, err := s.Open(bad); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
}

func TestVerifyDetectsCorruption(t *testing.T) {
	s := openTestStore(t)
	d := putBytes(t, s, []byte("pristine bytes"))
	path, _ := s.Path(d)
	corruptFile(t, path, []byte("tampered bytes"))
	if err := s.Verify(d); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify of tampered object: %v, want ErrCorrupt", err)
	}
	// Putting the right bytes again repairs the object.
	putBytes(t, s, []byte("pristine bytes"))
	if err := s.Verify(d); err != nil {
		t.Errorf("Verify after re-Put: %v", err)
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("disk on fire")
	}
	n := min(len(p), r.n)
	for i := range p[:n] {
		p[i] = 'x'
	}
	r.n -= n
	return n, nil
}

func TestFailedPutLeavesNothing(t *testing.T) {
	s := openTestStore(t)
	if _, err := s.Put(&failingReader{n: 100000}); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Put from a failing reader: %v", err)
	}
	if objs, _ := s.ListObjects(); len(objs) != 0 {
		t.Errorf("objects after a failed Put: %v", objs)
	}
	countFiles(t, filepath.Join(s.Root(), "objects"), 0)
	assertTmpEmpty(t, s)
}

func TestConcurrentPutOfSameContent(t *testing.T) {
	s := openTestStore(t)
	data := bytes.Repeat([]byte("concurrent "), 50000)
	var wg sync.WaitGroup
	digests := make([]Digest, 8)
	errs := make([]error, 8)
	for i := range digests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			digests[i], errs[i] = s.Put(bytes.NewReader(data))
		}()
	}
	wg.Wait()
	for i := range digests {
		if errs[i] != nil || digests[i] != digestOf(data) {
			t.Errorf("goroutine %d: %s, %v", i, digests[i], errs[i])
		}
	}
	if err := s.Verify(digestOf(data)); err != nil {
		t.Error(err)
	}
	countFiles(t, filepath.Join(s.Root(), "objects"), 1)
	assertTmpEmpty(t, s)
}

func TestIngest(t *testing.T) {
	s := openTestStore(t)
	dir, err := os.MkdirTemp(filepath.Join(s.Root(), "tmp"), "stage-*") // unleased, as a killed run leaves it
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "dataset")
	if err := os.WriteFile(out, []byte("stage output"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := s.Ingest(out)
	if err != nil {
		t.Fatal(err)
	}
	if d != digestOf([]byte("stage output")) || s.Verify(d) != nil {
		t.Errorf("ingested digest %s does not verify", d)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ingested file still at its temp path: %v", err)
	}
	tmp, err := s.CreateTemp("x-*")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tmp, filepath.Join(s.Root(), "tmp")) {
		t.Errorf("CreateTemp made %s outside tmp/", tmp)
	}
	if _, err := s.Ingest(filepath.Join(dir, "absent")); err == nil {
		t.Error("Ingest of a missing file succeeded")
	}
}

func TestActions(t *testing.T) {
	s := openTestStore(t)
	out := putBytes(t, s, []byte("out"))
	hexKey := digestOf([]byte("key"))
	tests := []struct{ name, key string }{
		{"hex key is the file name", string(hexKey)},
		{"other key is hashed", "noisy[noise=0.2]/v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &Action{Key: tt.key, Instance: "noisy[noise=0.2]", Stage: "noise", Version: "1",
				Params: map[string]any{"rate": 0.2}, Seed: 9, Outputs: map[string]Digest{"dataset": out},
				Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
			if err := s.PutAction(a); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetAction(tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if got.Key != a.Key || got.Outputs["dataset"] != out || got.Params["rate"] != 0.2 || !got.Started.Equal(a.Started) {
				t.Errorf("GetAction = %+v", got)
			}
			if _, err := os.Stat(s.actionPath(tt.key)); err != nil {
				t.Error(err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "actions", string(hexKey[:2]), string(hexKey[2:])+".json")); err != nil {
		t.Errorf("hex key not stored under its own name: %v", err)
	}
	if _, err := s.GetAction("absent"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetAction(absent): %v, want ErrNotFound", err)
	}
	corruptFile(t, s.actionPath(string(hexKey)), []byte(`{"key": "`))
	if _, err := s.GetAction(string(hexKey)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("GetAction of broken JSON: %v, want ErrCorrupt", err)
	}
	list, err := s.ListActions()
	if !errors.Is(err, ErrCorrupt) || len(list) != 1 || list[0].Key != "noisy[noise=0.2]/v1" {
		t.Errorf("ListActions = %d actions, %v; want the good one and ErrCorrupt", len(list), err)
	}
	if err := s.RemoveAction(string(hexKey)); err != nil {
		t.Error(err)
	}
	if err := s.RemoveAction(string(hexKey)); !errors.Is(err, ErrNotFound) {
		t.Errorf("second RemoveAction: %v", err)
	}
	if err := s.PutAction(&Action{}); err == nil {
		t.Error("PutAction without key succeeded")
	}
}

func TestRunsAndRefs(t *testing.T) {
	s := openTestStore(t)
	if _, err := s.GetRun("latest"); !errors.Is(err, ErrNotFound) {
		t.Errorf("latest of no runs: %v, want ErrNotFound", err)
	}
	base := time.Date(2026, 11, 26, 11, 4, 5, 0, time.UTC)
	var ids []string
	for i, offset := range []time.Duration{0, time.Hour, time.Second, 2 * time.Hour} {
		start := base.Add(offset)
		r := &Run{ID: NewRunID(start), Name: "run", Started: start, Status: "ok"}
		if i == 3 {
			r.Status = "failed"
		}
		if err := s.PutRun(r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	if ok, _ := regexp.MatchString(`^20261126T110405Z-[0-9a-f]{6}$`, ids[0]); !ok {
		t.Errorf("run id %q does not match the format", ids[0])
	}
	list, err := s.ListRuns()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{ids[0], ids[2], ids[1], ids[3]}
	if strings.Join(list, ",") != strings.Join(want, ",") {
		t.Errorf("ListRuns = %v, want %v", list, want)
	}
	latest, err := s.GetRun("latest")
	if err != nil || latest.ID != ids[3] || latest.Status != "failed" {
		t.Errorf("GetRun(latest) = %+v, %v", latest, err)
	}
	if _, err := s.GetRun("../x"); err == nil {
		t.Error("GetRun accepted a path")
	}
	if err := s.PutRun(&Run{ID: "a/b"}); err == nil {
		t.Error("PutRun accepted a path")
	}

	if _, err := s.GetRef("p.yaml#train"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetRef(unknown): %v", err)
	}
	for _, v := range []string{"key1", "key2"} {
		if err := s.SetRef("p.yaml#train", v); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetRef("p.yaml#train"); err != nil || got != v {
			t.Errorf("GetRef = %q, %v; want %q", got, err, v)
		}
	}
	assertTmpEmpty(t, s)
}

func TestCheck(t *testing.T) {
	s := openTestStore(t)
	good := putBytes(t, s, []byte("good"))
	bad := putBytes(t, s, []byte("will rot"))
	gone := putBytes(t, s, []byte("will vanish"))
	for i, d := range []Digest{good, bad, gone} {
		a := &Action{Key: string(digestOf([]byte{byte(i)})), Outputs: map[string]Digest{"out": d}}
		if err := s.PutAction(a); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutRun(&Run{ID: NewRunID(time.Now())}); err != nil {
		t.Fatal(err)
	}

	rep, err := s.Check(context.Background(), CheckOptions{ReadData: true})
	if err != nil || !rep.OK() || rep.Objects != 3 || rep.Actions != 3 || rep.Runs != 1 {
		t.Fatalf("healthy store: %+v, %v", rep, err)
	}

	badPath, _ := s.Path(bad)
	corruptFile(t, badPath, []byte("rotten!!"))
	gonePath, _ := s.Path(gone)
	if err := s.RemoveObject(gone); err != nil {
		t.Fatal(err)
	}
	brokenAction := filepath.Join(s.Root(), "actions", "ab", strings.Repeat("c", 62)+".json")
	writeRaw(t, brokenAction, "{not json")
	brokenRun := filepath.Join(s.Root(), "runs", "20260101T000000Z-000000.json")
	writeRaw(t, brokenRun, `{"id": 5}`)
	strayTmp := filepath.Join(s.Root(), "tmp", "put-123")
	writeRaw(t, strayTmp, "half")

	tests := []struct {
		name string
		opts CheckOptions
		want map[ProblemKind]string // kind -> file it names
	}{
		{"metadata only", CheckOptions{}, map[ProblemKind]string{
			ProblemMissingObject: "actions", ProblemCorruptAction: brokenAction,
			ProblemCorruptRun: brokenRun, ProblemStrayTmp: strayTmp,
		}},
		{"read data", CheckOptions{ReadData: true}, map[ProblemKind]string{
			ProblemMissingObject: "actions", ProblemCorruptAction: brokenAction, ProblemCorruptRun: brokenRun,
			ProblemStrayTmp: strayTmp, ProblemCorruptObject: badPath,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := s.Check(context.Background(), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			got := map[ProblemKind]string{}
			for _, p := range rep.Problems {
				got[p.Kind] = p.Path
				if p.Kind == ProblemMissingObject && !strings.Contains(p.Detail, string(gone)) {
					t.Errorf("missing-object problem does not name %s: %s", gone, p)
				}
			}
			if len(rep.Problems) != len(tt.want) {
				t.Errorf("problems %v, want kinds %v", rep.Problems, tt.want)
			}
			for kind, path := range tt.want {
				if !strings.Contains(got[kind], path) {
					t.Errorf("%s problem names %q, want %q", kind, got[kind], path)
				}
			}
		})
	}
	_ = gonePath

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Check(ctx, CheckOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Check with cancelled context: %v", err)
	}
}

func TestGC(t *testing.T) {
	s := openTestStore(t)
	kept := putBytes(t, s, []byte("output of an action"))
	input := putBytes(t, s, []byte("input of an action"))
	orphan := putBytes(t, s, []byte("nobody's"))
	if err := s.PutAction(&Action{Key: "k", Outputs: map[string]Digest{"out": kept},
		Inputs: map[string][]Digest{"in": {input}}}); err != nil {
		t.Fatal(err)
	}
	oldTmp := filepath.Join(s.Root(), "tmp", "put-old")
	newTmp := filepath.Join(s.Root(), "tmp", "put-new")
	writeRaw(t, oldTmp, "stale")
	writeRaw(t, newTmp, "in progress")
	past := time.Now().Add(-3 * time.Hour)
	if err := os.Chtimes(oldTmp, past, past); err != nil {
		t.Fatal(err)
	}
	opts := GCOptions{DryRun: true, TmpOlderThan: time.Hour}

	rep, err := s.GC(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ObjectsRemoved != 1 || rep.ObjectsKept != 2 || rep.TmpRemoved != 1 || rep.BytesFreed != int64(len("nobody's")) {
		t.Errorf("dry run report %+v", rep)
	}
	if !s.Has(orphan) {
		t.Fatal("dry run removed an object")
	}

	opts.ObjectsOlderThan = time.Hour
	if rep, _ := s.GC(context.Background(), opts); rep.ObjectsRemoved != 0 {
		t.Errorf("GC removed %d objects younger than ObjectsOlderThan", rep.ObjectsRemoved)
	}

	opts = GCOptions{TmpOlderThan: time.Hour}
	rep, err = s.GC(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if s.Has(orphan) || !s.Has(kept) || !s.Has(input) {
		t.Errorf("after GC: orphan %v kept %v input %v; want false true true", s.Has(orphan), s.Has(kept), s.Has(input))
	}
	if _, err := os.Stat(oldTmp); !errors.Is(err, os.ErrNotExist) {
		t.Error("stale tmp file survived GC")
	}
	if _, err := os.Stat(newTmp); err != nil {
		t.Error("GC removed a fresh tmp file")
	}
	if len(rep.Removed) != 2 {
		t.Errorf("Removed = %v", rep.Removed)
	}
	if rep, err := s.Check(context.Background(), CheckOptions{ReadData: true}); err != nil ||
		len(rep.Problems) != 1 || rep.Problems[0].Kind != ProblemStrayTmp {
		t.Errorf("Check after GC: %+v, %v", rep, err)
	}
}

func corruptFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeRaw(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func assertTmpEmpty(t *testing.T, s *DirStore) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.Root(), "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("tmp/ holds %d leftovers", len(entries))
	}
}

// countFiles checks the number of regular files under dir.
func countFiles(t *testing.T, dir string, want int) {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	if n != want {
		t.Errorf("%s holds %d files, want %d", dir, n, want)
	}
}
