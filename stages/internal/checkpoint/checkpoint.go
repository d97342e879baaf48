// Package checkpoint reads and writes the checkpoint files of long stages
// (train's epochs, eval's finished attacks): a magic line naming the format,
// gob-encoded values, and the sha256 of everything before it as a trailer.
//
// A checkpoint is only a cache of work, never an input to a cache key, but
// the store never trusts bytes: Read checks the trailer before it decodes
// anything, and Write replaces the file atomically, so a reader sees the old
// checkpoint or the new one, whole.
package checkpoint

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"fmt"
	"io"
	"os"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// Write replaces path with magic followed by values, gob-encoded in order,
// and the sha256 trailer.
func Write(path, magic string, values ...any) error {
	err := artifacts.WriteAtomic(path, 0o644, func(w io.Writer) error {
		sum := sha256.New()
		mw := io.MultiWriter(w, sum)
		if _, err := io.WriteString(mw, magic); err != nil {
			return err
		}
		enc := gob.NewEncoder(mw)
		for _, v := range values {
			if err := enc.Encode(v); err != nil {
				return err
			}
		}
		_, err := w.Write(sum.Sum(nil))
		return err
	})
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", path, err)
	}
	return nil
}

// Read reads the whole checkpoint at path, checks that its bytes hash to the
// trailer and that it starts with magic, and only then decodes it into
// values (pointers, in the order Write was given them).
func Read(path, magic string, values ...any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if len(data) < len(magic)+sha256.Size || !bytes.HasPrefix(data, []byte(magic)) {
		return fmt.Errorf("checkpoint %s is cut or not a %q checkpoint", path, magic[:len(magic)-1])
	}
	payload, trailer := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if sum := sha256.Sum256(payload); !bytes.Equal(sum[:], trailer) {
		return fmt.Errorf("checkpoint %s is corrupt: its bytes do not hash to its trailer", path)
	}
	dec := gob.NewDecoder(bytes.NewReader(payload[len(magic):]))
	for _, v := range values {
		if err := dec.Decode(v); err != nil {
			return fmt.Errorf("checkpoint %s: %w", path, err)
		}
	}
	return nil
}

// ReadFirst decodes only the first value of the checkpoint at path (a small
// header), without checking the trailer: enough to tell whether the rest is
// worth reading, never to use the state it describes.
func ReadFirst(path, magic string, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	got := make([]byte, len(magic))
	if _, err := io.ReadFull(r, got); err != nil || string(got) != magic {
		return fmt.Errorf("%s is not a %q checkpoint", path, magic[:len(magic)-1])
	}
	if err := gob.NewDecoder(r).Decode(v); err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return nil
}
