#!/usr/bin/env bash
# howto.sh follows the plugin how-to of README.md ("## Adding a stage
# (plugins)") literally, as a user outside this repository would: it extracts
# the code blocks marked <!-- howto:NAME --> from the README itself (not from
# a copy, so the README cannot drift from what works), and in a fresh
# temporary directory outside the repository
#
#   install.sh     installs sglr-pipe from this clone (GOBIN is the temp dir)
#   setup.sh       makes the module my-stage with a replace directive to this clone
#   main.go        is saved as my-stage/main.go
#   build.sh       builds the plugin and runs its describe
#   pipeline.yaml  is saved as my-stage/pipeline.yaml
#   run.sh         runs the pipeline and exports the plugin's table
#
# then checks what they print: the plugin's spec, a first run that runs both
# stages, the CSV of the three largest classes, a second run that is all
# cached, and a pipeline with top: 0 refused before anything runs.
#
# It works offline: GOPROXY is off (set HOWTO_GOPROXY to override), so every
# module must already be in the module cache; `go mod download` in this
# repository puts them there. HOWTO_KEEP=1 keeps the temporary directory.
# cmd/sglr-pipe/plugin_howto_test.go runs this script.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readme="$repo/README.md"
work=$(mktemp -d "${TMPDIR:-/tmp}/sglr-howto.XXXXXX")
work=$(cd "$work" && pwd -P)
log="$work/step.log" # the output of the step that runs now, shown if it fails

fail() {
	echo "howto.sh: $*" >&2
	exit 1
}

finish() {
	local rc=$?
	if [ "$rc" -ne 0 ] && [ -s "$log" ]; then
		echo "howto.sh: the failing step printed:" >&2
		sed 's/^/    /' "$log" >&2
		if grep -q 'disabled by GOPROXY=off' "$log"; then
			echo "howto.sh: offline, every module must be in the cache: run 'go mod download' in $repo" >&2
		fi
	fi
	if [ "${HOWTO_KEEP:-}" = 1 ]; then
		echo "howto.sh: kept $work" >&2
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap finish EXIT

case "$work/" in
"$(cd "$repo" && pwd -P)/"*) fail "temporary directory $work is inside the repository; set TMPDIR elsewhere" ;;
esac

# block NAME prints the fenced code block that directly follows the line
# "<!-- howto:NAME -->" in the README; a marker missing, repeated or not
# followed by a fence is an error.
block() {
	local rc=0
	awk -v marker="<!-- howto:$1 -->" '
		$0 == marker { found++; state = 1; next }
		state == 1 && /^```/ { state = 2; next }
		state == 1 && NF { bad = 1; exit }
		state == 2 && /^```/ { state = 0; closed++; next }
		state == 2 { print }
		END { if (bad) exit 3; if (found != 1 || closed != 1) exit 2 }
	' "$readme" || rc=$?
	case $rc in
	0) ;;
	3) fail "README.md: <!-- howto:$1 --> is not followed by a code block" ;;
	*) fail "README.md: want exactly one <!-- howto:$1 --> marker with a closed code block after it" ;;
	esac
}

blocks="$work/blocks"
mkdir "$blocks"
for name in install.sh setup.sh main.go build.sh pipeline.yaml run.sh; do
	block "$name" >"$blocks/$name"
	[ -s "$blocks/$name" ] || fail "README.md: the block after <!-- howto:$name --> is empty"
done

# step NAME sources the README's shell block NAME in this shell (so its cd
# persists), with its output in $log and $work/NAME.out.
step() {
	echo "howto.sh: README block $1" >&2
	: >"$log"
	# shellcheck disable=SC1090
	source "$blocks/$1" >"$log" 2>&1
	cp "$log" "$work/$1.out"
}

export SGLR="$repo"
export GOBIN="$work/bin"
export PATH="$GOBIN:$PATH"
export GOPROXY="${HOWTO_GOPROXY:-off}"
export GOWORK=off GOTOOLCHAIN=local
unset SGLR_STORE

cd "$work"
step install.sh
command -v sglr-pipe | grep -qx "$GOBIN/sglr-pipe" || fail "install.sh did not put sglr-pipe in GOBIN ($GOBIN)"
step setup.sh
[ "$(pwd -P)" = "$work/my-stage" ] || fail "setup.sh should leave us in $work/my-stage, not $(pwd)"
grep -q "=> $repo\$" go.mod || fail "setup.sh: go.mod has no replace directive to $repo:
$(cat go.mod)"
cp "$blocks/main.go" main.go
step build.sh
grep -q '"name": "label-counts"' "$work/build.sh.out" || fail "build.sh: describe did not print the spec"
cp "$blocks/pipeline.yaml" pipeline.yaml
step run.sh

out="$work/run.sh.out"
grep -q '^2 ran, 0 cached, 0 failed' "$out" || fail "run.sh: the first run did not run both stages"
# The CSV of the export: a header, then 3 classes with counts, largest first.
sed -n '/^class,count$/,$p' "$out" | awk -F, '
	NR == 1 { next }
	NF != 2 || $2 !~ /^[0-9]+$/ || $2 < 1 || (NR > 2 && $2 + 0 > prev) { bad = 1 }
	{ prev = $2 + 0; rows++ }
	END { exit (bad || rows != 3) }
' || fail "run.sh: the export is not class,count then 3 classes, largest first"

: >"$log"
sglr-pipe run pipeline.yaml >"$log" 2>&1
grep -q '^0 ran, 2 cached, 0 failed' "$log" || fail "a second run is not fully cached"

sed 's/top: 3/top: 0/' pipeline.yaml >bad.yaml
! cmp -s pipeline.yaml bad.yaml || fail "pipeline.yaml has no 'top: 3' to change into 'top: 0'"
: >"$log"
if sglr-pipe run bad.yaml >"$log" 2>&1; then
	fail "a pipeline with top: 0 ran; the param's Min of 1 should refuse it"
fi
grep -q 'top: 0 is below the minimum 1' "$log" || fail "top: 0 was refused with another message"
grep -q 'bad.yaml:4:' "$log" || fail "the top: 0 error does not point at bad.yaml line 4"
: >"$log"
echo "howto.sh: the README's plugin how-to works (in $work)"
