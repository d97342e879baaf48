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
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

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
