// Package nn is sglr-pipe's numeric core on gorgonia: models (mlp, cnn,
// preact-resnet18) with weights named as the equivalent PyTorch modules'
// state_dicts, compiled forward/backward graphs (Net), data-parallel training
// (Trainer) and evaluation (Evaluator), SGD with PyTorch semantics, learning-rate
// schedules, augmentation, label strategies (one-hot, smoothing, the SGLR bank,
// distillation targets) and training-time attacks (PGD, FGSM, the TRADES KL
// attack). It knows nothing of YAML, Arrow or the store.
//
// Every binary built from this module links gorgonia, whose start-up check
// (go4.org/unsafe/assume-no-moving-gc, pinned in go.mod because older versions
// panic at start under Go 1.26) the CLI tests exercise.
package nn
