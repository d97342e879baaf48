//go:build !linux

package main

import (
	"errors"
	"time"
)

// cpuClock reports that process CPU time is only read on Linux.
func cpuClock() (func() time.Duration, error) {
	return nil, errors.New("process CPU time is only read on Linux; use -clock wall")
}
