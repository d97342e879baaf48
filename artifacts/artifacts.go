// Package artifacts is sglr-pipe's content-addressed store and the Arrow IPC
// codecs for every artifact kind that stages pass to each other.
//
// An object is an immutable file named by the sha256 of its bytes. The action
// cache maps a stage instance's cache key to the digests it produced, and a
// run record lists what one `sglr-pipe run` did. The package knows nothing of
// pipelines or tensors: it stores bytes and encodes plain Go values.
package artifacts

import (
	"errors"
	"io"
	"time"
)

// Digest is the lowercase hex sha256 of an object's bytes (64 characters).
type Digest string

// ErrNotFound is returned (wrapped) when an object, action or run is absent.
var ErrNotFound = errors.New("not found")

// ErrCorrupt is returned (wrapped) when an object's bytes no longer hash to its name
// or a record cannot be decoded.
var ErrCorrupt = errors.New("corrupt")

// Store is what the pipeline needs from a store. DirStore implements it on a
// local directory; a distributed store can implement it later.
type Store interface {
	// Put streams r into a new object and returns its digest. The bytes go to a
	// temporary file that is fsynced and renamed, so no half object is ever visible.
	Put(r io.Reader) (Digest, error)
	// Ingest moves a finished file (created with CreateTemp) into the store.
	Ingest(tempPath string) (Digest, error)
	// CreateTemp creates a file in the store's scratch area, on the same
	// file system as the objects so that Ingest is a rename.
	CreateTemp(pattern string) (tempPath string, err error)
	// Scratch makes a scratch directory (for a stage's outputs) that the
	// caller removes with its Remove; until then `cache gc` leaves it alone.
	Scratch(pattern string) (*Scratch, error)
	// Has reports whether the object exists (without re-hashing it).
	Has(d Digest) bool
	// Path returns the file path of an existing object. Callers must not write
	// to it, and must read it through DecodeObject (or check its digest as they
	// read), never trust its bytes unchecked.
	Path(d Digest) (string, error)
	// Open returns an object's bytes for reading, checked against its digest
	// as they are read: bytes that no longer hash to d are a *DigestError.
	Open(d Digest) (ReadAtSeekCloser, error)
	// Verify re-hashes an object; a mismatch is ErrCorrupt.
	Verify(d Digest) error

	// GetAction returns the action recorded under key, or ErrNotFound.
	GetAction(key string) (*Action, error)
	// PutAction records an action atomically.
	PutAction(a *Action) error

	// PutRun stores a run record; GetRun reads one back ("latest" names the newest).
	PutRun(r *Run) error
	GetRun(id string) (*Run, error)
	// ListRuns returns run ids, oldest first.
	ListRuns() ([]string, error)

	// SetRef and GetRef keep small named pointers (e.g. pipeline file + instance id
	// -> the cache key it last had), so `plan` can say why an instance must run.
	// GetRef returns ErrNotFound for an unknown name.
	SetRef(name, value string) error
	GetRef(name string) (string, error)
}

// ReadAtSeekCloser is an open object: Arrow's IPC file reader needs ReadAt and Seek.
type ReadAtSeekCloser interface {
	io.Reader
	io.ReaderAt
	io.Seeker
	io.Closer
}

// Action is one action-cache entry: what a stage instance with a given key produced.
type Action struct {
	Key      string              `json:"key"`
	Instance string              `json:"instance"` // e.g. "noisy[noise=0.2]"
	Stage    string              `json:"stage"`    // the stage type ("noise", "exec:./x")
	Version  string              `json:"version"`
	Params   map[string]any      `json:"params"`
	Seed     uint64              `json:"seed"`
	Inputs   map[string][]Digest `json:"inputs"`
	// InputTags holds, for gathered ports, the matrix tags of each input in
	// order; they are part of the key, so replay needs them.
	InputTags map[string][]map[string]string `json:"input_tags,omitempty"`
	Outputs   map[string]Digest              `json:"outputs"`
	Summary   map[string]any                 `json:"summary,omitempty"` // figures the stage reported (e.g. realised noise rate)
	Started   time.Time                      `json:"started"`
	Seconds   float64                        `json:"seconds"`
	Tool      string                         `json:"tool"` // sglr-pipe version that produced it
}

// Run is the record of one `sglr-pipe run`.
type Run struct {
	ID        string        `json:"id"`
	Pipeline  string        `json:"pipeline"` // path of the pipeline file
	Name      string        `json:"name"`
	Args      []string      `json:"args,omitempty"`
	Started   time.Time     `json:"started"`
	Finished  time.Time     `json:"finished"`
	Status    string        `json:"status"` // "ok", "failed", "cancelled"
	Instances []RunInstance `json:"instances"`
}

// RunInstance is one stage instance inside a run record.
type RunInstance struct {
	ID      string              `json:"id"`
	Stage   string              `json:"stage"` // declaration id in the pipeline
	Uses    string              `json:"uses"`
	Axes    map[string]string   `json:"axes,omitempty"`
	Key     string              `json:"key"`
	Status  string              `json:"status"` // "cached", "ran", "failed", "skipped", "cancelled"
	Reason  string              `json:"reason,omitempty"`
	Inputs  map[string][]Digest `json:"inputs,omitempty"`
	Outputs map[string]Digest   `json:"outputs,omitempty"`
	Error   string              `json:"error,omitempty"`
	Seconds float64             `json:"seconds"`
	// Params are the instance's parameters with defaults filled in, so that
	// `diff` can compare two runs without the action cache (failed
	// instances have no action). Records written before this field existed
	// lack it; readers then fall back to the action under Key.
	Params map[string]any `json:"params,omitempty"`
}
