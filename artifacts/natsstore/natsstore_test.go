package natsstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// startServer runs a real NATS server with JetStream on a random loopback
// port, its data in a temporary directory.
func startServer(t *testing.T, dataDir string) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dataDir, NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server did not start")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// openStore connects to srv and opens a Store with a fresh mirror.
func openStore(t *testing.T, url string) (*Store, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	mirror, err := artifacts.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), js, mirror, Config{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s, js
}

func digestOf(b []byte) artifacts.Digest {
	sum := sha256.Sum256(b)
	return artifacts.Digest(hex.EncodeToString(sum[:]))
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestObjectsMoveBetweenMachinesByDigest(t *testing.T) {
	srv := startServer(t, t.TempDir())
	a, js := openStore(t, srv.ClientURL())
	b, _ := openStore(t, srv.ClientURL())
	tests := []struct {
		name   string
		size   int
		chunks uint32 // JetStream's default chunk is 128 KiB
	}{
		{"one byte", 1, 1},
		{"one chunk", 1000, 1},
		{"three chunks", 300 << 10, 3},
	}
	obs, err := js.ObjectStore(context.Background(), DefaultObjectBucket)
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := randomBytes(tt.size, uint64(i))
			want := digestOf(data)
			d, err := a.Put(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if d != want {
				t.Fatalf("Put returned %s, want %s", d, want)
			}
			if !b.Has(d) {
				t.Fatal("the other machine does not see the object")
			}
			if b.Mirror().Has(d) {
				t.Fatal("the other machine's mirror has the object before fetching it")
			}
			path, err := b.Path(d)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("fetched bytes differ from the uploaded ones")
			}
			if err := b.Verify(d); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			info, err := obs.GetInfo(context.Background(), string(d))
			if err != nil {
				t.Fatal(err)
			}
			if info.Chunks != tt.chunks || info.Size != uint64(tt.size) {
				t.Errorf("stored as %d chunks of %d bytes in all, want %d chunks of %d", info.Chunks, info.Size, tt.chunks, tt.size)
			}
			// The same content from another machine is not uploaded again.
			if _, err := b.Put(bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			again, err := obs.GetInfo(context.Background(), string(d))
			if err != nil {
				t.Fatal(err)
			}
			if again.NUID != info.NUID {
				t.Errorf("a second Put of the same bytes re-uploaded the object (nuid %s -> %s)", info.NUID, again.NUID)
			}
		})
	}
	rep, err := a.Check(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Objects != len(tests) {
		t.Errorf("Check: %d objects, problems %v; want %d objects and none", rep.Objects, rep.Problems, len(tests))
	}
	if rep.BytesRead != 1+1000+300<<10 {
		t.Errorf("Check re-hashed %d bytes", rep.BytesRead)
	}
}

func TestMissingAndCorruptObjects(t *testing.T) {
	srv := startServer(t, t.TempDir())
	s, js := openStore(t, srv.ClientURL())
	absent := digestOf([]byte("never stored"))
	if s.Has(absent) {
		t.Error("Has reports an object that was never stored")
	}
	if _, err := s.Path(absent); !errors.Is(err, artifacts.ErrNotFound) {
		t.Errorf("Path of an absent object: %v, want ErrNotFound", err)
	}
	if err := s.Verify(absent); !errors.Is(err, artifacts.ErrNotFound) {
		t.Errorf("Verify of an absent object: %v, want ErrNotFound", err)
	}
	if _, err := s.Path("not-a-digest"); err == nil {
		t.Error("Path accepted a malformed digest")
	}

	// An object stored under a name that is not the hash of its bytes, as a
	// buggy or malicious client could write it.
	obs, err := js.ObjectStore(context.Background(), DefaultObjectBucket)
	if err != nil {
		t.Fatal(err)
	}
	liar := digestOf([]byte("the name claims these bytes"))
	if _, err := obs.PutBytes(context.Background(), string(liar), []byte("but these were stored")); err != nil {
		t.Fatal(err)
	}
	if s.Has(liar) {
		t.Error("Has accepts an object whose metadata digest does not match its name")
	}
	if _, err := s.Path(liar); !errors.Is(err, artifacts.ErrCorrupt) {
		t.Errorf("Path of a mislabelled object: %v, want ErrCorrupt", err)
	}
	if s.Mirror().Has(liar) {
		t.Error("a mislabelled download was placed in the mirror")
	}
	if err := s.Verify(liar); !errors.Is(err, artifacts.ErrCorrupt) {
		t.Errorf("Verify of a mislabelled object: %v, want ErrCorrupt", err)
	}
	if _, err := obs.PutBytes(context.Background(), "stray-name", []byte("x")); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Check(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[artifacts.ProblemKind]int{}
	for _, p := range rep.Problems {
		kinds[p.Kind]++
	}
	if kinds[artifacts.ProblemCorruptObject] != 1 || kinds[artifacts.ProblemStrayFile] != 1 || len(rep.Problems) != 2 {
		t.Errorf("Check found %v, want one corrupt object and one stray name", rep.Problems)
	}
}

func TestActionCache(t *testing.T) {
	srv := startServer(t, t.TempDir())
	a, js := openStore(t, srv.ClientURL())
	b, _ := openStore(t, srv.ClientURL())
	out, err := a.Put(strings.NewReader("output bytes"))
	if err != nil {
		t.Fatal(err)
	}
	key := strings.Repeat("ab", 32)
	act := &artifacts.Action{
		Key: key, Instance: "noisy[rate=0.2]", Stage: "noise", Version: "v1",
		Params: map[string]any{"rate": 0.2, "kind": "symmetric"}, Seed: 1<<63 + 5,
		Inputs:  map[string][]artifacts.Digest{"dataset": {digestOf([]byte("in"))}},
		Outputs: map[string]artifacts.Digest{"dataset": out},
		Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Seconds: 1.5, Tool: "test",
	}
	if _, err := b.GetAction(key); !errors.Is(err, artifacts.ErrNotFound) {
		t.Fatalf("GetAction before PutAction: %v, want ErrNotFound", err)
	}
	if err := a.PutAction(act); err != nil {
		t.Fatal(err)
	}
	got, err := b.GetAction(key)
	if err != nil {
		t.Fatal(err)
	}
	if got.Seed != act.Seed || got.Outputs["dataset"] != out || got.Instance != act.Instance || !got.Started.Equal(act.Started) {
		t.Errorf("GetAction on another machine returned %+v, want %+v", got, act)
	}
	if b.Mirror().Has(out) {
		t.Error("reading an action fetched its outputs")
	}

	kv, err := js.KeyValue(context.Background(), DefaultActionBucket)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		value string
	}{
		{"undecodable", "{not json"},
		{"under another key", `{"key":"` + strings.Repeat("cd", 32) + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := kv.Put(context.Background(), key, []byte(tt.value)); err != nil {
				t.Fatal(err)
			}
			if _, err := b.GetAction(key); !errors.Is(err, artifacts.ErrCorrupt) {
				t.Errorf("GetAction: %v, want ErrCorrupt", err)
			}
		})
	}

	// An action naming an object nobody uploaded is reported by Check.
	act.Key = strings.Repeat("ef", 32)
	act.Outputs = map[string]artifacts.Digest{"dataset": digestOf([]byte("lost"))}
	if err := a.PutAction(act); err != nil {
		t.Fatal(err)
	}
	rep, err := a.Check(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[artifacts.ProblemKind]int{}
	for _, p := range rep.Problems {
		kinds[p.Kind]++
	}
	if rep.Actions != 2 || kinds[artifacts.ProblemCorruptAction] != 1 || kinds[artifacts.ProblemMissingObject] != 1 {
		t.Errorf("Check: %d actions, problems %v; want 2 actions, one corrupt and one naming a missing object", rep.Actions, rep.Problems)
	}
}

func TestStoreRidesOutAServerRestart(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServer(t, dataDir)
	port := srv.Addr().(*net.TCPAddr).Port
	s, _ := openStore(t, srv.ClientURL())
	d, err := s.Put(strings.NewReader("before the restart"))
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	srv.WaitForShutdown()

	// Bring the server back on the same port and data a little later, while
	// the store is already asking.
	restarted := make(chan *server.Server, 1)
	go func() {
		time.Sleep(500 * time.Millisecond)
		ns, err := server.NewServer(&server.Options{
			Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dataDir, NoLog: true, NoSigs: true,
		})
		if err != nil {
			t.Error(err)
			restarted <- nil
			return
		}
		ns.Start()
		restarted <- ns
	}()
	if !s.Has(d) {
		t.Error("after the restart the object is gone")
	}
	if ns := <-restarted; ns != nil {
		t.Cleanup(ns.Shutdown)
	}
	d2, err := s.Put(strings.NewReader("after the restart"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(d2); err != nil {
		t.Error(err)
	}
}
