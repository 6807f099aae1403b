#!/usr/bin/env bash
# A long fuzz campaign: each target runs until 10^8 executions or SECONDS seconds,
# whichever comes first, on its committed seeds plus a scratch corpus, and one line per
# target is printed for fuzz/README.md: target, executions, seconds, coverage (libFuzzer's
# `cov` edges and `ft` features), result.
#
# usage: fuzz/scripts/campaign.sh SECONDS [TARGET...]     (run from anywhere)
# Crashes stop the target and are left in fuzz/artifacts/<target>/ for a regression test.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:?usage: campaign.sh SECONDS [TARGET...]}
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(RUSTC_BOOTSTRAP=1 cargo fuzz list)
fi
RUSTC_BOOTSTRAP=1 cargo fuzz build >/dev/null 2>&1 || { echo "fuzz build failed" >&2; exit 1; }
mkdir -p campaign-logs
for t in "${targets[@]}"; do
    scratch="target/campaign-corpus/$t"
    mkdir -p "$scratch" "corpus/$t"
    log="campaign-logs/$t.log"
    start=$(date +%s)
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "$scratch" "corpus/$t" -- \
        -max_total_time="$seconds" -runs=100000000 -print_final_stats=1 >"$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    runs=$(grep -a -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -a -o '[0-9]*$' | tail -1)
    last=$(grep -a -E '^#[0-9]+' "$log" | tail -1)
    cov=$(echo "$last" | grep -a -o 'cov: [0-9]*' | grep -a -o '[0-9]*')
    ft=$(echo "$last" | grep -a -o 'ft: [0-9]*' | grep -a -o '[0-9]*')
    result=$([ $rc -eq 0 ] && echo "no crash" || echo "CRASH (exit $rc, see $log)")
    echo "| \`$t\` | ${runs:-?} | ${took} s | ${cov:-?} | ${ft:-?} | $result | $(date -u +%F) |"
done
