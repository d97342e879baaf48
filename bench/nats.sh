#!/usr/bin/env bash
# Measures the NATS executor against the local one and prints a Markdown table:
#
#   1. per-instance overhead: a sweep of N noise instances on a 16-sample
#      dataset (an almost empty stage), run by the local executor (--jobs 1)
#      and by one worker with one core; wall time of the run divided by N;
#   2. a sweep of 8 CPU-bound train instances (one core each) on one worker
#      pinned to core 0, then on two workers pinned to cores 0 and 1, with the
#      local executor (--jobs 1) for reference.
#
#   bench/nats.sh        # about a minute on 2 idle cores
#
# Environment: N (64 overhead instances), EPOCHS (150: about 2 s per train
# instance), KEEP (a directory to keep the stores and logs in). Every
# configuration runs with its own root seed, so nothing is cached.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
N=${N:-64}
EPOCHS=${EPOCHS:-150}
out=${KEEP:-$(mktemp -d)}
mkdir -p "$out"
bin="$out/sglr-pipe"
go build -o "$bin" ./cmd/sglr-pipe

pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [ -z "${KEEP:-}" ]; then rm -rf "$out"; fi
}
trap cleanup EXIT

pin() { # pin CORE CMD...: run CMD on one core when taskset exists
	local core=$1
	shift
	if command -v taskset >/dev/null; then taskset -c "$core" "$@"; else "$@"; fi
}

wait_for() { # wait_for FILE PATTERN
	for _ in $(seq 300); do
		if grep -q "$2" "$1" 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "timed out waiting for '$2' in $1" >&2
	cat "$1" >&2
	exit 1
}

"$bin" serve --listen 127.0.0.1:0 --data "$out/nats" --quiet >"$out/serve.log" 2>&1 &
pids+=($!)
wait_for "$out/serve.log" "listening on"
url=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$out/serve.log")

start_worker() { # start_worker NAME CORE
	local cmd=("$bin" worker --nats "$url" --name "$1" --cores 1 --cache "$out/cache-$1")
	if command -v taskset >/dev/null; then cmd=(taskset -c "$2" "${cmd[@]}"); fi
	"${cmd[@]}" >"$out/$1.log" 2>&1 & # taskset execs the worker: $! is the worker
	pids+=($!)
	wait_for "$out/$1.log" "ready on"
}

stop_workers() {
	for pid in "${pids[@]:1}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]:1}"; do wait "$pid" 2>/dev/null || true; done
	pids=("${pids[0]}")
}

seconds() { # seconds CMD...: wall time of CMD in seconds
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >>"$out/runs.log" 2>&1
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc -l
}

# 1. Per-instance overhead.
rates=$(seq 0 $((N - 1)) | awk -v n="$N" '{printf "%s%.4f", (NR>1?", ":""), $1/(2*n)}')
cat >"$out/overhead.yaml" <<EOF
name: overhead
seed: 1
matrix:
  rate: [$rates]
stages:
  data:
    uses: load
    with: {dataset: synthetic, train: 16, val: 4, test: 4, classes: 2, shape: [1, 2, 2]}
  noisy:
    uses: noise
    inputs: {dataset: data.train}
    with: {kind: symmetric, rate: "\${{ matrix.rate }}"}
EOF
local_overhead=$(seconds "$bin" run "$out/overhead.yaml" --store "$out/local" --jobs 1 --set seed=101)
start_worker o1 0
nats_overhead=$(seconds "$bin" run "$out/overhead.yaml" --store "$out/coord" --executor nats --nats "$url" --set seed=102)
stop_workers

# 2. CPU-bound sweep on 1 and 2 workers.
cat >"$out/sweep.yaml" <<EOF
name: sweep
seed: 1
matrix:
  lr: [0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.14, 0.16]
stages:
  data:
    uses: load
    with: {dataset: synthetic, train: 400, val: 100, test: 50, classes: 4, shape: [1, 8, 8]}
  train:
    uses: train
    inputs: {train: data.train, val: data.val}
    with: {model: mlp, hidden: [32], epochs: $EPOCHS, batch: 50, steps: 3, val_steps: 1, workers: 1, lr: "\${{ matrix.lr }}"}
EOF
local_sweep=$(seconds pin 0 "$bin" run "$out/sweep.yaml" --store "$out/local" --jobs 1 --set seed=201)
start_worker s1 0
one_worker=$(seconds "$bin" run "$out/sweep.yaml" --store "$out/coord" --executor nats --nats "$url" --set seed=202)
start_worker s2 1
two_workers=$(seconds "$bin" run "$out/sweep.yaml" --store "$out/coord" --executor nats --nats "$url" --set seed=203)
stop_workers

per() { echo "scale=1; 1000 * $1 / ($N + 1)" | bc -l; }
printf '| measurement | local executor | NATS executor |\n|---|---|---|\n'
printf '| %d almost empty instances: wall time per instance | %s ms | %s ms |\n' $((N + 1)) "$(per "$local_overhead")" "$(per "$nats_overhead")"
printf '| 8 train instances (%d epochs): local --jobs 1 on core 0 | %.1f s | |\n' "$EPOCHS" "$local_sweep"
printf '| same sweep, 1 worker (core 0) | | %.1f s |\n' "$one_worker"
printf '| same sweep, 2 workers (cores 0 and 1) | | %.1f s (speed-up %.2f) |\n' "$two_workers" "$(echo "$one_worker / $two_workers" | bc -l)"
