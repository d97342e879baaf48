//go:build linux && sglrcuda

package cuda

import (
	"reflect"
	"testing"
	"unsafe"

	"github.com/ebitengine/purego"
)

// TestBindingSignatures registers every driver and cuBLAS function type
// with purego against a real libc symbol (never called), so a Go type
// purego cannot marshal fails here rather than on the first GPU run. It
// does not show the types match NVIDIA's ABI: only a GPU run does.
func TestBindingSignatures(t *testing.T) {
	h, err := purego.Dlopen("libc.so.6", purego.RTLD_NOW)
	if err != nil {
		t.Skipf("no libc.so.6 to take a symbol address from: %v", err)
	}
	sym, err := purego.Dlsym(h, "abs")
	if err != nil {
		t.Skip(err)
	}
	for _, v := range []any{&driver{}, &BLAS{}} {
		rv := reflect.ValueOf(v).Elem()
		n := 0
		for i := range rv.NumField() {
			f := rv.Field(i)
			if f.Kind() != reflect.Func {
				continue
			}
			name := rv.Type().Field(i).Name
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("%T.%s: purego refuses %v: %v", v, name, f.Type(), r)
					}
				}()
				ptr := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Interface()
				purego.RegisterFunc(ptr, sym)
			}()
			n++
		}
		if n == 0 {
			t.Errorf("%T: no function fields", v)
		}
	}
}
