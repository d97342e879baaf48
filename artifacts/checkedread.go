package artifacts

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
)

// checkedReader is the ReadAtSeeker that DecodeObject decodes from. It hashes
// every byte it hands to the decoder, in file order, as the decoder reads it:
// the file is read once, and what was decoded is exactly what was hashed.
//
// The Arrow decoder reads the footer first and the record batches after, so
// reads arrive out of order. A small read ahead of the hashed prefix is kept
// (copied) until the hash reaches it; a large one (a record batch body) makes
// the hash catch up first, reading any gap between (the schema message,
// which the decoder takes from the footer instead) from the file. finish
// hashes whatever the decoder never asked for.
//
// Hashing runs on its own goroutine, so on a second core it costs no wall
// time. That goroutine reads the decoder's buffers after ReadAt has returned,
// which io.ReaderAt's contract does not allow in general; it is sound here
// because every decoder in this package allocates through limitedAllocator,
// which hands out fresh Go memory and never reuses it, and Arrow only reads a
// message body once it has been filled. A buffer changed meanwhile could only
// turn a good object into a false mismatch, never the other way round.
type checkedReader struct {
	mu   sync.Mutex
	f    *os.File
	size int64
	pos  int64 // cursor for Read and Seek

	next      int64       // bytes [0,next) are queued for hashing
	held      []heldBytes // reads past next, hashed when next reaches them
	heldTotal int
	err       error // a read error while filling a gap

	queue chan []byte
	sum   chan string
}

// heldBytes is a copy of bytes handed to the decoder ahead of the hash.
type heldBytes struct {
	off  int64
	data []byte
}

const (
	maxHeldRead  = 1 << 20  // reads up to this size ahead of the hash are kept
	maxHeldTotal = 16 << 20 // and no more than this in all
	gapChunk     = 1 << 20  // gaps are read from the file in pieces of this size
	readPiece    = 4 << 20  // large reads are done and hashed in pieces of this size
)

func newCheckedReader(f *os.File, size int64) *checkedReader {
	r := &checkedReader{f: f, size: size, queue: make(chan []byte, 64), sum: make(chan string, 1)}
	go func() {
		h := sha256.New()
		for b := range r.queue {
			h.Write(b)
		}
		r.sum <- hex.EncodeToString(h.Sum(nil))
	}()
	return r
}

// ReadAt reads from the file and accounts for the bytes in the hash. A large
// read is done in pieces, each queued as soon as it is in, so the hash of a
// record batch body starts with its first megabytes rather than after it.
func (r *checkedReader) ReadAt(p []byte, off int64) (int, error) {
	total := 0
	for {
		piece := p[total:]
		if len(piece) > readPiece {
			piece = piece[:readPiece]
		}
		n, err := r.f.ReadAt(piece, off+int64(total))
		r.mu.Lock()
		r.deliver(off+int64(total), piece[:n])
		r.mu.Unlock()
		total += n
		if err != nil || total == len(p) {
			return total, err
		}
	}
}

// Read reads at the cursor.
func (r *checkedReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	pos := r.pos
	r.mu.Unlock()
	if pos >= r.size {
		return 0, io.EOF
	}
	n, err := r.ReadAt(p, pos)
	r.mu.Lock()
	r.pos = pos + int64(n)
	r.mu.Unlock()
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek moves the cursor; the size is the file's when it was opened.
func (r *checkedReader) Seek(offset int64, whence int) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.pos + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, errors.New("checked reader: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("checked reader: negative position")
	}
	r.pos = abs
	return abs, nil
}

// finish hashes the bytes the decoder did not read and returns the digest of
// the whole file. The reader must not be used afterwards.
func (r *checkedReader) finish() (Digest, error) {
	r.mu.Lock()
	r.advanceTo(r.size)
	err := r.err
	r.mu.Unlock()
	close(r.queue)
	sum := <-r.sum
	if err != nil {
		return "", err
	}
	return Digest(sum), nil
}

// deliver accounts for b, the bytes at off just handed to the decoder.
func (r *checkedReader) deliver(off int64, b []byte) {
	end := off + int64(len(b))
	switch {
	case len(b) == 0 || end <= r.next:
		// Nothing new: a re-read of bytes already hashed.
	case off <= r.next:
		r.queue <- b[r.next-off:]
		r.next = end
		r.drainHeld()
	case len(b) <= maxHeldRead && r.heldTotal+len(b) <= maxHeldTotal:
		r.held = append(r.held, heldBytes{off: off, data: append([]byte(nil), b...)})
		r.heldTotal += len(b)
	default:
		r.advanceTo(off)
		if r.next == off {
			r.queue <- b
			r.next = end
			r.drainHeld()
		}
	}
}

// advanceTo brings the hashed prefix up to target, from held reads where
// they cover it and from the file elsewhere.
func (r *checkedReader) advanceTo(target int64) {
	for r.next < target && r.err == nil {
		r.drainHeld()
		if r.next >= target {
			return
		}
		stop := target
		for _, h := range r.held {
			if h.off > r.next && h.off < stop {
				stop = h.off
			}
		}
		n := min(stop-r.next, gapChunk)
		buf := make([]byte, n)
		got, err := r.f.ReadAt(buf, r.next)
		if got > 0 {
			r.queue <- buf[:got]
			r.next += int64(got)
		}
		if err != nil {
			if errors.Is(err, io.EOF) && r.next >= r.size {
				return
			}
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("file shorter than when it was opened (%d of %d bytes): %w", r.next, r.size, io.ErrUnexpectedEOF)
			}
			r.err = err
			return
		}
	}
}

// drainHeld queues the held reads that now continue the hashed prefix and
// drops those it has passed.
func (r *checkedReader) drainHeld() {
	if len(r.held) == 0 {
		return
	}
	sort.Slice(r.held, func(i, j int) bool { return r.held[i].off < r.held[j].off })
	kept := r.held[:0]
	for _, h := range r.held {
		end := h.off + int64(len(h.data))
		switch {
		case end <= r.next:
			r.heldTotal -= len(h.data)
		case h.off <= r.next:
			r.queue <- h.data[r.next-h.off:]
			r.next = end
			r.heldTotal -= len(h.data)
		default:
			kept = append(kept, h)
		}
	}
	r.held = kept
}
