// Package metric measures classifiers from their logits: softmax,
// log-softmax, argmax, accuracy, soft-target cross-entropy and KL
// divergence, and calibration (reliability bins, ECE, MCE, NLL, Brier
// score, label-confidence histograms, temperature scaling).
//
// Invariants: logits are float32 rows [n,k]; everything is computed in
// float64 and follows the NaN rule of the row helpers (a NaN is the largest
// value). The row-wise helpers panic on buffers too short for n rows, a
// programming error; the calibration functions check user data (sizes,
// labels, finite logits) and return errors.
package metric
