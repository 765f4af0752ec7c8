#!/usr/bin/env bash
# Runs each test file alone (same mocha options as .mocharc.json, one file at a time) and prints
# its wall time and mocha summary, slowest first. Logs: .local/test-timings/<file>.log.
# Usage: npm run test:timings [-- test/a.test.ts test/b.test.ts ...]
set -uo pipefail
cd "$(dirname "$0")/.."
out=.local/test-timings
mkdir -p "$out"
if [[ $# -gt 0 ]]; then files=("$@"); else files=(test/*.test.ts); fi
rows=()
for f in "${files[@]}"; do
    name="$(basename "$f" .test.ts)"
    start=$(date +%s.%N)
    npx mocha --no-config -n import=tsx --extension ts --timeout 120000 --exit \
        --reporter test/support/reporter.js "$f" >"$out/$name.log" 2>&1
    rc=$?
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    summary="$(grep -E '^mocha: ' "$out/$name.log" | tail -1)"
    row="$(printf '%8.1f  %-40s rc=%s  %s' "$secs" "$name" "$rc" "${summary:-no summary}")"
    echo "$row"
    rows+=("$row")
done
echo "--- slowest first"
printf '%s\n' "${rows[@]}" | sort -rn
