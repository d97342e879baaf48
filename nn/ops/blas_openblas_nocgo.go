//go:build openblas && !cgo

package ops

// The openblas build reaches OpenBLAS through cgo. Without cgo the tag would
// silently give a pure-Go build, so it fails to compile instead, naming the
// fix: build with CGO_ENABLED=1 (and a C compiler), or without -tags openblas.
var _ = openblasTagNeedsCgo_buildWith_CGO_ENABLED_1
