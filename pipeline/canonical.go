package pipeline

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"unicode/utf8"
)

// CanonicalJSON encodes v as canonical JSON: object keys sorted bytewise, no
// insignificant whitespace, integers as integers, floats in their shortest
// round-trip form, strings JSON-escaped with only the escapes JSON requires.
// It is the byte form that cache keys hash, so it must never depend on map
// iteration order or on encoding/json's choices.
//
// Supported values: nil, bool, string (and named string types such as
// artifacts.Digest), every integer and float type, slices and arrays of
// supported values, maps with string keys, and json.Number (as the number). NaN, ±Inf, invalid UTF-8 and
// any other type are errors naming the offending path.
func CanonicalJSON(v any) ([]byte, error) {
	var enc canonicalEncoder
	if err := enc.encode(reflect.ValueOf(v), "$"); err != nil {
		return nil, err
	}
	return enc.buf, nil
}

type canonicalEncoder struct{ buf []byte }

func (e *canonicalEncoder) encode(v reflect.Value, path string) error {
	if !v.IsValid() {
		e.buf = append(e.buf, "null"...)
		return nil
	}
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		return e.encode(v.Elem(), path)
	case reflect.Bool:
		e.buf = strconv.AppendBool(e.buf, v.Bool())
	case reflect.String:
		if v.Type() == jsonNumberType {
			return e.encodeNumber(json.Number(v.String()), path)
		}
		return e.encodeString(v.String(), path)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.buf = strconv.AppendInt(e.buf, v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.buf = strconv.AppendUint(e.buf, v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("canonical JSON: %s: %v has no JSON form", path, f)
		}
		bits := 64
		if v.Kind() == reflect.Float32 {
			bits = 32
		}
		if f == 0 {
			f = 0 // -0 and +0 are the same parameter value
		}
		e.buf = strconv.AppendFloat(e.buf, f, 'g', -1, bits)
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			e.buf = append(e.buf, "[]"...)
			return nil
		}
		e.buf = append(e.buf, '[')
		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if err := e.encode(v.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, ']')
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("canonical JSON: %s: map key type %s is not a string", path, v.Type().Key())
		}
		keys := make([]string, 0, v.Len())
		values := make(map[string]reflect.Value, v.Len())
		for it := v.MapRange(); it.Next(); {
			k := it.Key().String()
			keys = append(keys, k)
			values[k] = it.Value()
		}
		sort.Strings(keys)
		e.buf = append(e.buf, '{')
		for i, k := range keys {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if err := e.encodeString(k, path); err != nil {
				return err
			}
			e.buf = append(e.buf, ':')
			if err := e.encode(values[k], path+"."+k); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, '}')
	default:
		return fmt.Errorf("canonical JSON: %s: unsupported type %s", path, v.Type())
	}
	return nil
}

var jsonNumberType = reflect.TypeOf(json.Number(""))

// encodeNumber writes a json.Number (a record decoded with UseNumber) the way
// the Go number it stands for would be written.
func (e *canonicalEncoder) encodeNumber(n json.Number, path string) error {
	if i, err := n.Int64(); err == nil {
		e.buf = strconv.AppendInt(e.buf, i, 10)
		return nil
	}
	f, err := n.Float64()
	if err != nil {
		return fmt.Errorf("canonical JSON: %s: %q is not a number", path, string(n))
	}
	return e.encode(reflect.ValueOf(f), path)
}

// encodeString writes s as a JSON string: '"' and '\' escaped, control
// characters as \b \f \n \r \t or \u00XX, everything else verbatim UTF-8.
func (e *canonicalEncoder) encodeString(s, path string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("canonical JSON: %s: string %q is not valid UTF-8", path, s)
	}
	const hex = "0123456789abcdef"
	e.buf = append(e.buf, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			e.buf = append(e.buf, '\\', c)
		case c == '\b':
			e.buf = append(e.buf, '\\', 'b')
		case c == '\f':
			e.buf = append(e.buf, '\\', 'f')
		case c == '\n':
			e.buf = append(e.buf, '\\', 'n')
		case c == '\r':
			e.buf = append(e.buf, '\\', 'r')
		case c == '\t':
			e.buf = append(e.buf, '\\', 't')
		case c < 0x20:
			e.buf = append(e.buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			e.buf = append(e.buf, c)
		}
	}
	e.buf = append(e.buf, '"')
	return nil
}
