#!/usr/bin/env bash
# Compares one PGD-10 adversarial training step (batch 128) of sglr-pipe's Go
# engine, built pure Go and with -tags openblas, against the same step in
# PyTorch, and prints one Markdown table: ms/step of each, the ratios, and
# for the Go builds the heap allocations per step and the peak RSS (PyTorch's
# peak RSS beside).
#
#   bench/trainstep.sh              # mlp, cnn-28, cnn-32, preact-resnet18
#   bench/trainstep.sh --no-resnet  # the first three only: a few minutes on 2 cores
#
# Every model runs at BATCH. preact-resnet18 can be given its own batch with
# RESNET_BATCH (Go and PyTorch alike), for machines where batch 128 does not
# fit; its row then names the batch.
#
# Environment: BATCH (128), RESNET_BATCH (BATCH), WARMUP (2), STEPS (20, at most), MINSTEPS (3, at least),
# MAXTIME (12, seconds of timed steps per model once MINSTEPS are done),
# PYTHON (/usr/bin/python3: Debian's python3-torch), KEEP (a directory to keep
# the raw outputs in). The Go runs use every core as workers; PyTorch gets as
# many threads (torch.set_num_threads). preact-resnet18 has one warm-up step
# and at least one timed step: its steps take seconds.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
BATCH=${BATCH:-128}
RESNET_BATCH=${RESNET_BATCH:-$BATCH}
WARMUP=${WARMUP:-2}
STEPS=${STEPS:-20}
MINSTEPS=${MINSTEPS:-3}
MAXTIME=${MAXTIME:-12}
PYTHON=${PYTHON:-/usr/bin/python3}
resnet=true
case "${1:-}" in
"" | --resnet) ;; # --resnet: the default now, kept for older instructions
--no-resnet) resnet=false ;;
*)
	echo "usage: $0 [--no-resnet]" >&2
	exit 2
	;;
esac

out=${KEEP:-$(mktemp -d)}
mkdir -p "$out"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$out"' EXIT

echo "building pure Go (CGO_ENABLED=0) and -tags openblas ..." >&2
CGO_ENABLED=0 go build -o "$out/trainstep-pure" ./bench/trainstep
CGO_ENABLED=1 go build -tags openblas -o "$out/trainstep-openblas" ./bench/trainstep

# run_all MODELS BATCH WARMUP MINSTEPS appends one row per model to
# $out/{pure,openblas,torch}.tsv, the model named "model (batch N)" when N is
# not BATCH.
run_all() {
	local models=$1 batch=$2 warmup=$3 minsteps=$4 row=()
	[ "$batch" = "$BATCH" ] || row=(-v suffix=" (batch $batch)")
	local label=(awk -F'\t' -v OFS='\t' "${row[@]}" '/^#/ { print; next } { $1 = $1 suffix; print }')
	for build in pure openblas; do
		echo "running Go $build: $models at batch $batch ..." >&2
		"$out/trainstep-$build" -tsv -models "$models" -batch "$batch" -warmup "$warmup" -steps "$STEPS" \
			-minsteps "$minsteps" -maxtime "${MAXTIME}s" | "${label[@]}" >>"$out/$build.tsv"
	done
	echo "running PyTorch: $models at batch $batch ..." >&2
	"$PYTHON" bench/torch_step.py --tsv --threads "$(nproc)" --models "$models" --batch "$batch" --warmup "$warmup" \
		--steps "$STEPS" --minsteps "$minsteps" --maxtime "$MAXTIME" | "${label[@]}" >>"$out/torch.tsv"
}

rm -f "$out/pure.tsv" "$out/openblas.tsv" "$out/torch.tsv"
run_all mlp,cnn-28,cnn-32 "$BATCH" "$WARMUP" "$MINSTEPS"
if $resnet; then
	run_all preact-resnet18 "$RESNET_BATCH" 1 1
fi

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (shared: figures are noisy)"
for f in pure openblas torch; do
	printf '%-9s BLAS: %s\n' "$f" "$(awk -F'\t' '$1 == "#blas" { print $2; exit }' "$out/$f.tsv")"
done
printf 'Go workers: %s; PyTorch threads: %s; batch %s; step = PGD-10 (eval) + train fwd/bwd + SGD\n\n' \
	"$(awk -F'\t' '$1 == "#workers" { print $2; exit }' "$out/pure.tsv")" "$(nproc)" "$BATCH"

awk -F'\t' '
	/^#/ { next }
	FILENAME ~ /pure.tsv$/     { order[++n] = $1; pure[$1] = $2; pallocs[$1] = $3; prss[$1] = $4 }
	FILENAME ~ /openblas.tsv$/ { ob[$1] = $2; oallocs[$1] = $3; orss[$1] = $4 }
	FILENAME ~ /torch.tsv$/    { torch[$1] = $2; trss[$1] = $4 }
	END {
		print "| model | Go pure ms | Go openblas ms | PyTorch ms | ratio pure/torch | ratio openblas/torch | allocs/step (pure / openblas) | peak RSS (pure / openblas / PyTorch) |"
		print "|---|---:|---:|---:|---:|---:|---:|---:|"
		for (i = 1; i <= n; i++) {
			m = order[i]
			printf "| %s | %.1f | %.1f | %.1f | %.2f | %.2f | %d / %d | %s / %s / %s |\n", m, pure[m], ob[m], torch[m],
				pure[m] / torch[m], ob[m] / torch[m], pallocs[m], oallocs[m], prss[m], orss[m], trss[m]
		}
	}' "$out/pure.tsv" "$out/openblas.tsv" "$out/torch.tsv"
