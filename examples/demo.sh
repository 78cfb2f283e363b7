#!/bin/sh
# The README demo: a pool in a temporary folder, a thin volume written, a
# snapshot of it, more writes, both maps shown with thin_map, both versions
# read back, and thin_check run on the metadata.
# Usage: examples/demo.sh [BUILD_DIR]   (default: build)
set -eu
b=${1:-build}
thinp="$b/tools/thinp"
thin_map="$b/examples/thin_map"
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
say() { printf '\n$ %s\n' "$*"; }
run() { say "$*"; "$@"; }

truncate -s 8M "$d/meta"
truncate -s 64M "$d/data"
run "$thinp" format -m "$d/meta" --block-size 64k --data-blocks 1024
run "$thinp" message -m "$d/meta" "create_thin 0"
say "printf 'version one of block 0' | thinp write -m meta -d data 0 0"
printf 'version one of block 0' | "$thinp" write -m "$d/meta" -d "$d/data" 0 0
say "printf 'block 3' | thinp write -m meta -d data 0 196608"
printf 'block 3' | "$thinp" write -m "$d/meta" -d "$d/data" 0 196608
run "$thinp" message -m "$d/meta" "create_snap 1 0"
say "printf 'VERSION TWO' | thinp write -m meta -d data 0 0   (breaks sharing with the snapshot)"
printf 'VERSION TWO' | "$thinp" write -m "$d/meta" -d "$d/data" 0 0
run "$thin_map" -a "$d/meta"
say "thinp read -m meta -d data 0 0 22    (the origin, device 0)"
"$thinp" read -m "$d/meta" -d "$d/data" 0 0 22; echo
say "thinp read -m meta -d data 1 0 22    (the snapshot, device 1)"
"$thinp" read -m "$d/meta" -d "$d/data" 1 0 22; echo
run "$thinp" status -m "$d/meta"
run "$thinp" check -m "$d/meta"
if command -v thin_check >/dev/null 2>&1; then
	run thin_check "$d/meta"
else
	echo "(thin_check not installed: apt-get install thin-provisioning-tools)"
fi
