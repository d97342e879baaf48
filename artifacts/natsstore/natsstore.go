// Package natsstore is an artifacts.Store shared by many machines through
// NATS JetStream: objects live in a JetStream object store, named by their
// sha256 (content-addressed, chunked by JetStream, each content stored once),
// and the action cache lives in a JetStream key-value bucket, so that every
// coordinator and worker of a sweep sees the same cache.
//
// A local artifacts.DirStore mirrors what this machine fetched or produced:
// stages read inputs from local files, and an object is downloaded at most
// once per machine. Run records and refs (which explain cache misses to the
// person who ran the pipeline) stay in the mirror, on the coordinator.
package natsstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// Default bucket names.
const (
	DefaultObjectBucket = "sglr-objects"
	DefaultActionBucket = "sglr-actions"
)

// Config names the buckets and bounds the time spent on NATS calls.
type Config struct {
	Objects  string        // object store bucket; "" means DefaultObjectBucket
	Actions  string        // key-value bucket of the action cache; "" means DefaultActionBucket
	Replicas int           // replicas of buckets this call creates (clustered JetStream); 0 means 1
	Timeout  time.Duration // how long one call keeps retrying through a reconnect; 0 means one minute
	Transfer time.Duration // how long one object upload or download may take; 0 means 30 minutes
}

// Store implements artifacts.Store on JetStream with a local mirror. It is
// safe for concurrent use.
type Store struct {
	mirror  *artifacts.DirStore
	objects jetstream.ObjectStore
	actions jetstream.KeyValue

	objectBucket string // name of the object store, for messages
	timeout      time.Duration
	transfer     time.Duration
	fetching     keyedLock
}

// Open binds to the object store and key-value buckets named by cfg,
// creating them when they do not exist yet, with mirror as the local copy.
func Open(ctx context.Context, js jetstream.JetStream, mirror *artifacts.DirStore, cfg Config) (*Store, error) {
	if mirror == nil {
		return nil, errors.New("natsstore: no local mirror store")
	}
	cfg = cfg.withDefaults()
	s := &Store{mirror: mirror, timeout: cfg.Timeout, transfer: cfg.Transfer, objectBucket: cfg.Objects}
	err := s.retryMeta(ctx, func(ctx context.Context) error {
		obs, err := js.ObjectStore(ctx, cfg.Objects)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			obs, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
				Bucket: cfg.Objects, Description: "sglr-pipe artifacts, named by the sha256 of their bytes",
				Replicas: cfg.Replicas,
			})
			if errors.Is(err, jetstream.ErrBucketExists) { // created by someone else meanwhile
				obs, err = js.ObjectStore(ctx, cfg.Objects)
			}
		}
		if err != nil {
			return fmt.Errorf("object store %s: %w", cfg.Objects, err)
		}
		kv, err := js.KeyValue(ctx, cfg.Actions)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
				Bucket: cfg.Actions, Description: "sglr-pipe action cache: stage-instance key -> outputs",
				Replicas: cfg.Replicas,
			})
			if errors.Is(err, jetstream.ErrBucketExists) {
				kv, err = js.KeyValue(ctx, cfg.Actions)
			}
		}
		if err != nil {
			return fmt.Errorf("key-value bucket %s: %w", cfg.Actions, err)
		}
		s.objects, s.actions = obs, kv
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("natsstore: %w", err)
	}
	return s, nil
}

// Mirror returns the local store that holds what this machine fetched or
// produced, and the run records and refs.
func (s *Store) Mirror() *artifacts.DirStore { return s.mirror }

// Put streams r into the mirror and uploads the object unless the shared
// store already has it.
func (s *Store) Put(r io.Reader) (artifacts.Digest, error) {
	d, err := s.mirror.Put(r)
	if err != nil {
		return "", err
	}
	return d, s.Upload(d)
}

// Ingest moves a finished file into the mirror and uploads it unless the
// shared store already has it.
func (s *Store) Ingest(tempPath string) (artifacts.Digest, error) {
	d, err := s.mirror.Ingest(tempPath)
	if err != nil {
		return "", err
	}
	return d, s.Upload(d)
}

// Upload copies object d from the mirror to the shared store, unless the
// shared store already holds it (deduplication by content).
func (s *Store) Upload(d artifacts.Digest) error {
	if s.Has(d) {
		return nil
	}
	path, err := s.mirror.Path(d)
	if err != nil {
		return fmt.Errorf("upload %s: %w", d, err)
	}
	err = s.retryTransfer(context.Background(), func(ctx context.Context, touch func()) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		info, err := s.objects.Put(ctx, jetstream.ObjectMeta{Name: string(d)}, touchReader{f, touch})
		if err != nil {
			return err
		}
		if info.Digest != objectDigest(d) {
			return fmt.Errorf("uploaded bytes hash to %s: %w", info.Digest, artifacts.ErrCorrupt)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("upload %s to %s: %w", d, s.objectBucket, err)
	}
	return nil
}

// DropLocal removes the mirror's copy of object d (a missing one is not an
// error), so that the next Path downloads it again from the shared store:
// what a worker does with a local copy found corrupt as it was read.
func (s *Store) DropLocal(d artifacts.Digest) error {
	if err := s.mirror.RemoveObject(d); err != nil && !errors.Is(err, artifacts.ErrNotFound) {
		return err
	}
	return nil
}

// CreateTemp creates a scratch file in the mirror.
func (s *Store) CreateTemp(pattern string) (string, error) { return s.mirror.CreateTemp(pattern) }

// Scratch makes a leased scratch directory in the mirror; the caller removes it.
func (s *Store) Scratch(pattern string) (*artifacts.Scratch, error) { return s.mirror.Scratch(pattern) }

// Has reports whether the shared store holds object d (its metadata names
// the right sha256); the bytes are not re-hashed.
func (s *Store) Has(d artifacts.Digest) bool {
	if _, err := artifacts.ParseDigest(string(d)); err != nil {
		return false
	}
	var found bool
	err := s.retryMeta(context.Background(), func(ctx context.Context) error {
		info, err := s.objects.GetInfo(ctx, string(d))
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			found = false
			return nil
		}
		if err != nil {
			return err
		}
		found = !info.Deleted && info.Digest == objectDigest(d)
		return nil
	})
	return err == nil && found
}

// Path returns the mirror's file of object d, downloading it first when the
// mirror does not have it. The download is hashed before it is placed, so a
// corrupt transfer is an error wrapping artifacts.ErrCorrupt, never a file.
func (s *Store) Path(d artifacts.Digest) (string, error) {
	if _, err := artifacts.ParseDigest(string(d)); err != nil {
		return "", fmt.Errorf("object %q: %w", d, err)
	}
	if s.mirror.Has(d) {
		return s.mirror.Path(d)
	}
	unlock := s.fetching.lock(string(d))
	defer unlock()
	if s.mirror.Has(d) { // fetched by another goroutine while we waited
		return s.mirror.Path(d)
	}
	err := s.retryTransfer(context.Background(), func(ctx context.Context, touch func()) error { return s.fetch(ctx, touch, d) })
	if err != nil {
		return "", fmt.Errorf("fetch %s from %s: %w", d, s.objectBucket, err)
	}
	return s.mirror.Path(d)
}

// Open opens object d for reading, downloading it into the mirror first if needed.
func (s *Store) Open(d artifacts.Digest) (artifacts.ReadAtSeekCloser, error) {
	if _, err := s.Path(d); err != nil {
		return nil, err
	}
	return s.mirror.Open(d)
}

// Verify re-hashes object d as the shared store holds it, and the mirror's
// copy when there is one; a mismatch is an error wrapping artifacts.ErrCorrupt
// and an absent object one wrapping artifacts.ErrNotFound.
func (s *Store) Verify(d artifacts.Digest) error {
	if _, err := artifacts.ParseDigest(string(d)); err != nil {
		return fmt.Errorf("object %q: %w", d, err)
	}
	if _, err := s.rehash(d); err != nil {
		return err
	}
	if s.mirror.Has(d) {
		if err := s.mirror.Verify(d); err != nil {
			return fmt.Errorf("local copy in %s: %w", s.mirror.Root(), err)
		}
	}
	return nil
}

// GetAction returns the action recorded under key in the shared action
// cache, or an error wrapping artifacts.ErrNotFound; an undecodable entry is
// an error wrapping artifacts.ErrCorrupt.
func (s *Store) GetAction(key string) (*artifacts.Action, error) {
	if key == "" {
		return nil, errors.New("get action: empty key")
	}
	var data []byte
	err := s.retryMeta(context.Background(), func(ctx context.Context) error {
		e, err := s.actions.Get(ctx, kvKey(key))
		if err != nil {
			return err
		}
		data = e.Value()
		return nil
	})
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, fmt.Errorf("action %s: %w", key, artifacts.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("action %s in %s: %w", key, s.actions.Bucket(), err)
	}
	a, err := decodeAction(data)
	if err != nil {
		return nil, fmt.Errorf("action %s in %s: %w", key, s.actions.Bucket(), err)
	}
	if a.Key != key {
		return nil, fmt.Errorf("action %s in %s holds key %q: %w", key, s.actions.Bucket(), a.Key, artifacts.ErrCorrupt)
	}
	return a, nil
}

// PutAction records a in the shared action cache.
func (s *Store) PutAction(a *artifacts.Action) error {
	if a == nil || a.Key == "" {
		return errors.New("put action: empty key")
	}
	data, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("put action %s: %w", a.Key, err)
	}
	err = s.retryMeta(context.Background(), func(ctx context.Context) error {
		_, err := s.actions.Put(ctx, kvKey(a.Key), data)
		return err
	})
	if err != nil {
		return fmt.Errorf("put action %s in %s: %w", a.Key, s.actions.Bucket(), err)
	}
	return nil
}

// PutRun stores a run record in the mirror.
func (s *Store) PutRun(r *artifacts.Run) error { return s.mirror.PutRun(r) }

// GetRun reads a run record from the mirror.
func (s *Store) GetRun(id string) (*artifacts.Run, error) { return s.mirror.GetRun(id) }

// ListRuns lists the mirror's run records, oldest first.
func (s *Store) ListRuns() ([]string, error) { return s.mirror.ListRuns() }

// SetRef stores a ref in the mirror.
func (s *Store) SetRef(name, value string) error { return s.mirror.SetRef(name, value) }

// GetRef reads a ref from the mirror.
func (s *Store) GetRef(name string) (string, error) { return s.mirror.GetRef(name) }

// Check inspects the shared store: every object is named by a digest and its
// metadata names that sha256 (with readData its bytes are re-hashed too), and
// every action decodes, sits under its own key and names objects that exist.
// Findings go into the report, with paths of the form bucket/name; the error
// is only for failing to list the buckets.
func (s *Store) Check(ctx context.Context, readData bool) (*artifacts.CheckReport, error) {
	rep := &artifacts.CheckReport{}
	add := func(kind artifacts.ProblemKind, path, detail string) {
		rep.Problems = append(rep.Problems, artifacts.Problem{Kind: kind, Path: path, Detail: detail})
	}
	var infos []*jetstream.ObjectInfo
	err := s.retryMeta(ctx, func(ctx context.Context) error {
		var err error
		infos, err = s.objects.List(ctx)
		if errors.Is(err, jetstream.ErrNoObjectsFound) {
			infos, err = nil, nil
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.objectBucket, err)
	}
	present := map[artifacts.Digest]bool{}
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		path := s.objectBucket + "/" + info.Name
		d, err := artifacts.ParseDigest(info.Name)
		if err != nil {
			add(artifacts.ProblemStrayFile, path, err.Error())
			continue
		}
		rep.Objects++
		if info.Digest != objectDigest(d) {
			add(artifacts.ProblemCorruptObject, path, fmt.Sprintf("metadata digest %s does not match the name", info.Digest))
			continue
		}
		present[d] = true
		if !readData {
			continue
		}
		n, err := s.rehash(d)
		rep.BytesRead += n
		switch {
		case errors.Is(err, artifacts.ErrCorrupt):
			add(artifacts.ProblemCorruptObject, path, err.Error())
			present[d] = false
		case err != nil:
			add(artifacts.ProblemIO, path, err.Error())
		}
	}

	var keys []string
	err = s.retryMeta(ctx, func(ctx context.Context) error {
		var err error
		keys, err = s.actions.Keys(ctx)
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			keys, err = nil, nil
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.actions.Bucket(), err)
	}
	for _, key := range keys {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		path := s.actions.Bucket() + "/" + key
		rep.Actions++
		a, err := s.GetAction(key)
		if err != nil {
			add(artifacts.ProblemCorruptAction, path, err.Error())
			continue
		}
		for port, d := range a.Outputs {
			if !present[d] {
				add(artifacts.ProblemMissingObject, path, fmt.Sprintf("output %q names missing object %s", port, d))
			}
		}
	}
	return rep, nil
}

// Transient reports whether err is worth retrying once the connection is
// back: a timeout, a lost or re-establishing connection, or JetStream not
// answering yet (a server that is starting).
func Transient(err error) bool {
	for _, t := range []error{
		nats.ErrTimeout, context.DeadlineExceeded, nats.ErrNoResponders, nats.ErrConnectionReconnecting,
		nats.ErrDisconnected, jetstream.ErrNoStreamResponse, jetstream.ErrJetStreamNotEnabled,
		jetstream.ErrJetStreamNotEnabledForAccount, jetstream.ErrNoHeartbeat,
	} {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// attemptTimeout bounds one try of a metadata call, so that a request lost
// in a reconnect is retried instead of waiting for the whole budget.
const attemptTimeout = 5 * time.Second

// stallTimeout is how long a transfer may go without moving a byte before
// the try is abandoned and retried (a connection that died mid-transfer).
const stallTimeout = 30 * time.Second

// errStalled marks a transfer abandoned because no byte moved for stallTimeout.
var errStalled = errors.New("transfer stalled")

// retry calls fn until it succeeds, fails with an error that is not
// Transient, or budget has passed. Each try gets a context bounded by per.
func retry(ctx context.Context, budget, per time.Duration, fn func(context.Context) error) error {
	deadline := time.Now().Add(budget)
	wait := 50 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, per)
		err := fn(actx)
		cancel()
		if err == nil || !(Transient(err) || errors.Is(err, errStalled)) || ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			if err != nil && ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// retryMeta retries a small request within the store's timeout.
func (s *Store) retryMeta(ctx context.Context, fn func(context.Context) error) error {
	return retry(ctx, s.timeout, min(attemptTimeout, s.timeout), fn)
}

// retryTransfer retries an upload or download within the store's transfer
// budget. A try is abandoned when no byte moves for stallTimeout: fn calls
// touch whenever bytes move.
func (s *Store) retryTransfer(ctx context.Context, fn func(ctx context.Context, touch func()) error) error {
	return retry(ctx, s.transfer, s.transfer, func(ctx context.Context) error {
		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		var mu sync.Mutex
		last := time.Now()
		touch := func() {
			mu.Lock()
			last = time.Now()
			mu.Unlock()
		}
		done := make(chan struct{})
		defer close(done)
		go func() {
			tick := time.NewTicker(stallTimeout / 10)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-ctx.Done():
					return
				case now := <-tick.C:
					mu.Lock()
					idle := now.Sub(last)
					mu.Unlock()
					if idle > stallTimeout {
						cancel(errStalled)
						return
					}
				}
			}
		}()
		err := fn(ctx, touch)
		if err != nil && errors.Is(context.Cause(ctx), errStalled) {
			return fmt.Errorf("%w: %w", errStalled, err)
		}
		return err
	})
}

// touchReader calls touch on every read that moved bytes.
type touchReader struct {
	r     io.Reader
	touch func()
}

func (t touchReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.touch()
	}
	return n, err
}

// fetch downloads object d into a temporary file of the mirror, hashes it
// while writing and places it under its name only if it matches.
func (s *Store) fetch(ctx context.Context, touch func(), d artifacts.Digest) error {
	res, err := s.objects.Get(ctx, string(d))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("object %s: %w", d, artifacts.ErrNotFound)
	}
	if err != nil {
		return err
	}
	defer res.Close()
	tmp, err := s.mirror.CreateTemp("fetch-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // a no-op once Ingest moved it
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), touchReader{res, touch})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if got := artifacts.Digest(hex.EncodeToString(h.Sum(nil))); got != d {
		return fmt.Errorf("object %s: downloaded bytes hash to %s: %w", d, got, artifacts.ErrCorrupt)
	}
	if _, err := s.mirror.Ingest(tmp); err != nil {
		return err
	}
	return nil
}

// rehash streams object d from the shared store through sha256 and returns
// how many bytes it read.
func (s *Store) rehash(d artifacts.Digest) (int64, error) {
	var n int64
	err := s.retryTransfer(context.Background(), func(ctx context.Context, touch func()) error {
		res, err := s.objects.Get(ctx, string(d))
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return fmt.Errorf("object %s: %w", d, artifacts.ErrNotFound)
		}
		if err != nil {
			return err
		}
		defer res.Close()
		h := sha256.New()
		n, err = io.Copy(h, touchReader{res, touch})
		if errors.Is(err, jetstream.ErrDigestMismatch) {
			return fmt.Errorf("object %s in %s: %w: %w", d, s.objectBucket, err, artifacts.ErrCorrupt)
		}
		if err != nil {
			return err
		}
		if got := artifacts.Digest(hex.EncodeToString(h.Sum(nil))); got != d {
			return fmt.Errorf("object %s in %s hashes to %s: %w", d, s.objectBucket, got, artifacts.ErrCorrupt)
		}
		return nil
	})
	return n, err
}

// objectDigest is how JetStream's object store writes the sha256 of an
// object's bytes in its metadata.
func objectDigest(d artifacts.Digest) string {
	sum, err := hex.DecodeString(string(d))
	if err != nil {
		return ""
	}
	return "SHA-256=" + base64.URLEncoding.EncodeToString(sum)
}

// kvKey maps an action key to a key-value key: a sha256 hex key is used as
// is, anything else by its sha256 (key-value keys allow few characters).
func kvKey(key string) string {
	if _, err := artifacts.ParseDigest(key); err == nil {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// decodeAction decodes a stored action; anything undecodable wraps ErrCorrupt.
func decodeAction(data []byte) (*artifacts.Action, error) {
	var a artifacts.Action
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("decode: %v: %w", err, artifacts.ErrCorrupt)
	}
	return &a, nil
}

func (c Config) withDefaults() Config {
	if c.Objects == "" {
		c.Objects = DefaultObjectBucket
	}
	if c.Actions == "" {
		c.Actions = DefaultActionBucket
	}
	if c.Replicas < 1 {
		c.Replicas = 1
	}
	if c.Timeout <= 0 {
		c.Timeout = time.Minute
	}
	if c.Transfer <= 0 {
		c.Transfer = 30 * time.Minute
	}
	return c
}

// keyedLock serialises work on the same key (downloads of one object) while
// letting different keys proceed in parallel.
type keyedLock struct {
	mu    sync.Mutex
	locks map[string]*keyedEntry
}

type keyedEntry struct {
	mu    sync.Mutex
	users int
}

// lock takes the lock of key and returns its release.
func (k *keyedLock) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedEntry{}
	}
	e := k.locks[key]
	if e == nil {
		e = &keyedEntry{}
		k.locks[key] = e
	}
	e.users++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		e.users--
		if e.users == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
