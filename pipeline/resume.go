package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/stages"
)

// ResumableStage is implemented by a built-in stage that saves checkpoints of
// long work (train), so that a rerun after an interruption, or a longer run,
// continues from the last one instead of starting over.
//
// Checkpoints live in a store directory named by the instance's resume
// family (ResumeFamily): its cache key computed without the parameters that
// ResumeNeutral names. Two instances of one family differ only in those
// parameters (train: epochs), so one may continue from the other's
// checkpoint; the stage itself checks that a checkpoint fits (train: the same
// learning rates for the epochs it holds) and otherwise starts over.
type ResumableStage interface {
	ResumeNeutral() []string
	// ResumeFrom says what an instance with params would resume from in
	// checkpoint directory dir ("resume from epoch 60"), or "" when nothing
	// fits. It reads only what it needs to say so (plan calls it).
	ResumeFrom(params stages.Params, dir string) string
}

// KeyIgnoredStage is implemented by a built-in stage with parameters that
// never change what it writes (train: checkpoint_every), which are therefore
// left out of its cache key whatever their value.
type KeyIgnoredStage interface {
	KeyIgnored() []string
}

// ResumeFamily returns the name of the checkpoint directory of the instance
// keyed by k, when its stage is a ResumableStage: the sha256 of the key
// document without the resume-neutral parameters, under a prefix of its own
// so that it never equals a cache key. It returns "" for other stages.
func ResumeFamily(k KeySpec) (string, error) {
	st, ok := stages.Builtin.Lookup(k.Stage)
	if !ok {
		return "", nil
	}
	rs, ok := st.(ResumableStage)
	if !ok {
		return "", nil
	}
	params := maps.Clone(k.Params)
	for _, name := range rs.ResumeNeutral() {
		delete(params, name)
	}
	k.Params = params
	doc, err := KeyDocument(k)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte("sglr-resume\x00"))
	h.Write(doc)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkpointDir returns the checkpoint directory of the instance keyed by
// ks in store, or "" when its stage keeps no checkpoints or the store has no
// place for them (a shared store: checkpoints are local to one machine).
func checkpointDir(store artifacts.Store, ks KeySpec) (string, error) {
	cs, ok := store.(artifacts.CheckpointStore)
	if !ok {
		return "", nil
	}
	family, err := ResumeFamily(ks)
	if err != nil || family == "" {
		return "", err
	}
	return cs.CheckpointDir(family)
}

// resumeNote is what plan adds to the reason of an instance that will run:
// what it would resume from, or "".
func resumeNote(store artifacts.Store, n *Node, ks KeySpec) string {
	rs, ok := n.Stage.(ResumableStage)
	if !ok {
		return ""
	}
	cs, ok := store.(artifacts.CheckpointStore)
	if !ok {
		return ""
	}
	family, err := ResumeFamily(ks)
	if err != nil || family == "" {
		return ""
	}
	dir, ok := cs.ExistingCheckpointDir(family)
	if !ok {
		return ""
	}
	return rs.ResumeFrom(n.Params, dir)
}
