// Package nn is sglr-pipe's numeric core on gorgonia: models, optimisers,
// losses, label strategies, attacks and metrics. It knows nothing of YAML,
// Arrow or the store.
//
// The adversarial-training code arrives with the training issue; today the
// package only links gorgonia so that every binary built from this module
// exercises gorgonia's start-up check (go4.org/unsafe/assume-no-moving-gc,
// pinned in go.mod because older versions panic at start under Go 1.26).
package nn

import _ "gorgonia.org/gorgonia" // linked for the start-up check described above
