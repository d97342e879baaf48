package main

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// cpuClock returns a clock reading the CPU time of the process, all its
// threads together.
func cpuClock() (func() time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
		return nil, fmt.Errorf("read the process CPU clock: %w", err)
	}
	return func() time.Duration {
		_ = unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts)
		return time.Duration(ts.Nano())
	}, nil
}
