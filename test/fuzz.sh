#!/bin/bash
# fuzz.sh runs every fuzz target of the module (func FuzzX in any package)
# for $FUZZTIME each (default 10s). A crasher fails the run and is written
# by go test to the package's testdata/fuzz/FuzzX/: fix the bug and commit
# the file, which then runs as a regression seed in every `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
# The packages with a fuzz target, and each target's name.
targets=()
while read -r file; do
	while read -r name; do
		targets+=("./$(dirname "$file") $name")
	done < <(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file")
done < <(git ls-files --cached --others --exclude-standard '*_test.go' | xargs grep -l '^func Fuzz' | sort)
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz.sh: no fuzz targets found" >&2
	exit 1
fi
for t in "${targets[@]}"; do
	set -- $t
	echo "== $2 ($1, $FUZZTIME)"
	"$GO" test -run '^$' -fuzz "^$2\$" -fuzztime "$FUZZTIME" "$1"
done
echo "fuzz.sh: ${#targets[@]} targets passed, $FUZZTIME each"
