#!/usr/bin/env bash
# Times AutoAttack "standard" (APGD-CE, APGD-T, FAB-T, Square 5000) of
# sglr-pipe's Go engine on 1000 fashion-mnist-mini test points at eps 0.1,
# against the quickstart MLP 784-128-128-10 (PGD-AT trained once and cached),
# built pure Go and with -tags openblas, and prints both runs side by side.
#
#   bench/autoattack.sh          # about 3-4 minutes on 2 cores
#
# Environment: MODEL (the cached model file, default in $TMPDIR; delete it to
# retrain), N (test points, 1000), WORKERS (Evaluator workers, 0 = every
# core), BATCH (Evaluator chunk, 256 as in the eval stage), KEEP (a directory
# to keep the raw outputs in). The OpenBLAS build needs cgo and
# libopenblas-dev; without them only the pure-Go run is printed.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
N=${N:-1000}
WORKERS=${WORKERS:-0}
BATCH=${BATCH:-256}
MODEL=${MODEL:-${TMPDIR:-/tmp}/sglr-bench-autoattack-mlp.arrow}
out=${KEEP:-$(mktemp -d)}
mkdir -p "$out"

args=(-model "$MODEL" -n "$N" -workers "$WORKERS" -batch "$BATCH" -tsv)
go build -o "$out/aa-pure" ./bench/autoattack
builds=(pure)
if go build -tags openblas -o "$out/aa-openblas" ./bench/autoattack 2>"$out/openblas-build.log"; then
	builds+=(openblas)
else
	echo "OpenBLAS build failed (needs cgo and libopenblas-dev), see $out/openblas-build.log" >&2
fi
for b in "${builds[@]}"; do
	echo "running $b ..." >&2
	"$out/aa-$b" "${args[@]}" >"$out/$b.tsv"
done

echo "AutoAttack standard, eps 0.1, $N fashion-mnist-mini test points, MLP 784-128-128-10 (batch $BATCH)"
for b in "${builds[@]}"; do
	printf '%s: %s\n' "$b" "$(awk -F'\t' '$1 == "blas" {print $2}' "$out/$b.tsv")"
done
header="| attack |"
rule="|---|"
for b in "${builds[@]}"; do
	header+=" $b s | $b robust % |"
	rule+="---:|---:|"
done
echo
echo "$header"
echo "$rule"
for attack in clean apgd-ce apgd-t fab-t square total; do
	row="| $attack |"
	for b in "${builds[@]}"; do
		row+=$(awk -F'\t' -v a="$attack" '$1 == a {printf " %s | %.1f |", ($1 == "clean" ? "" : $2), 100 * $4}' "$out/$b.tsv")
	done
	echo "$row"
done
