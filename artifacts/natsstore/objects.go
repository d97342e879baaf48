package natsstore

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

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
