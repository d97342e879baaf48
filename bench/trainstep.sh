#!/usr/bin/env bash
# Compares one PGD-10 adversarial training step (batch 128) of sglr-pipe's Go
# engine, built pure Go and with -tags openblas, against the same step in
# PyTorch, and prints one Markdown table.
#
#   bench/trainstep.sh            # mlp, cnn-28, cnn-32: about 3-4 minutes on 2 cores
#   bench/trainstep.sh --resnet   # adds preact-resnet18 on 3x32x32 at RESNET_BATCH
#
# preact-resnet18 runs at its own, smaller batch (RESNET_BATCH, default 16;
# Go and PyTorch alike): the Go engine needed about 10 GB of RSS and 22 s per
# step at batch 32 on 2 cores, so batch 128 would not fit in this machine.
#
# Environment: BATCH (128), RESNET_BATCH (16), WARMUP (2), STEPS (20, at most), MINSTEPS (3, at least),
# MAXTIME (12, seconds of timed steps per model once MINSTEPS are done),
# PYTHON (/usr/bin/python3: Debian's python3-torch), KEEP (a directory to keep
# the raw outputs in). The Go runs use every core as workers; PyTorch gets as
# many threads (torch.set_num_threads).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
BATCH=${BATCH:-128}
RESNET_BATCH=${RESNET_BATCH:-16}
WARMUP=${WARMUP:-2}
STEPS=${STEPS:-20}
MINSTEPS=${MINSTEPS:-3}
MAXTIME=${MAXTIME:-12}
PYTHON=${PYTHON:-/usr/bin/python3}
resnet=false
case "${1:-}" in
"") ;;
--resnet) resnet=true ;;
*)
	echo "usage: $0 [--resnet]" >&2
	exit 2
	;;
esac

out=${KEEP:-$(mktemp -d)}
mkdir -p "$out"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$out"' EXIT

echo "building pure Go (CGO_ENABLED=0) and -tags openblas ..." >&2
CGO_ENABLED=0 go build -o "$out/trainstep-pure" ./bench/trainstep
CGO_ENABLED=1 go build -tags openblas -o "$out/trainstep-openblas" ./bench/trainstep

common=(-tsv -batch "$BATCH" -warmup "$WARMUP" -steps "$STEPS" -minsteps "$MINSTEPS" -maxtime "${MAXTIME}s")
for build in pure openblas; do
	echo "running Go $build ..." >&2
	"$out/trainstep-$build" "${common[@]}" >"$out/$build.tsv"
done
echo "running PyTorch ..." >&2
"$PYTHON" bench/torch_step.py --tsv --threads "$(nproc)" --batch "$BATCH" --warmup "$WARMUP" --steps "$STEPS" \
	--minsteps "$MINSTEPS" --maxtime "$MAXTIME" >"$out/torch.tsv"

if $resnet; then
	# One warm-up and at least one timed step: every step takes seconds.
	row="preact-resnet18 (batch $RESNET_BATCH)"
	rn=(-models preact-resnet18 -batch "$RESNET_BATCH" -warmup 1 -steps "$STEPS" -minsteps 1 -maxtime "${MAXTIME}s" -tsv)
	for build in pure openblas; do
		echo "running Go $build, preact-resnet18 ..." >&2
		"$out/trainstep-$build" "${rn[@]}" | awk -F'\t' -v OFS='\t' -v row="$row" '!/^#/ { $1 = row; print }' >>"$out/$build.tsv"
	done
	echo "running PyTorch, preact-resnet18 ..." >&2
	"$PYTHON" bench/torch_step.py --tsv --threads "$(nproc)" --models preact-resnet18 --batch "$RESNET_BATCH" \
		--warmup 1 --steps "$STEPS" --minsteps 1 --maxtime "$MAXTIME" |
		awk -F'\t' -v OFS='\t' -v row="$row" '!/^#/ { $1 = row; print }' >>"$out/torch.tsv"
fi

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (shared: figures are noisy)"
for f in pure openblas torch; do
	printf '%-9s BLAS: %s\n' "$f" "$(awk -F'\t' '$1 == "#blas" { print $2 }' "$out/$f.tsv")"
done
printf 'Go workers: %s; PyTorch threads: %s; batch %s; step = PGD-10 (eval) + train fwd/bwd + SGD\n\n' \
	"$(awk -F'\t' '$1 == "#workers" { print $2 }' "$out/pure.tsv")" "$(nproc)" "$BATCH"

awk -F'\t' '
	/^#/ { next }
	FILENAME ~ /pure.tsv$/     { order[++n] = $1; pure[$1] = $2; pallocs[$1] = $3; prss[$1] = $4 }
	FILENAME ~ /openblas.tsv$/ { ob[$1] = $2; oallocs[$1] = $3; orss[$1] = $4 }
	FILENAME ~ /torch.tsv$/    { torch[$1] = $2 }
	END {
		print "| model | Go pure ms | Go openblas ms | PyTorch ms | ratio pure/torch | ratio openblas/torch | allocs/step (pure / openblas) | peak RSS (pure / openblas) |"
		print "|---|---:|---:|---:|---:|---:|---:|---:|"
		for (i = 1; i <= n; i++) {
			m = order[i]
			printf "| %s | %.1f | %.1f | %.1f | %.2f | %.2f | %d / %d | %s / %s |\n", m, pure[m], ob[m], torch[m],
				pure[m] / torch[m], ob[m] / torch[m], pallocs[m], oallocs[m], prss[m], orss[m]
		}
	}' "$out/pure.tsv" "$out/openblas.tsv" "$out/torch.tsv"
