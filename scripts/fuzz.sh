#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 60), after replaying the
# inputs of bugs found before (fuzz/regressions/<target>-*). Fails on any
# crash. Uses the stable compiler with RUSTC_BOOTSTRAP=1 (cargo-fuzz needs
# -Z flags for the sanitizer).
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo fuzz build
summary=()
for t in $(cargo fuzz list); do
    for r in fuzz/regressions/"$t"-*; do
        [[ -e $r ]] || continue
        echo "fuzz: replay $r"
        cargo fuzz run "$t" "$r" >/dev/null
    done
    work=target/fuzz-corpus/$t
    mkdir -p "$work"
    log=target/fuzz-$t.log
    echo "fuzz: $t for ${secs}s"
    if ! cargo fuzz run "$t" "$work" "fuzz/corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 >"$log" 2>&1; then
        grep -E "panicked|ERROR|SUMMARY" -A5 "$log" | head -40
        echo "fuzz: $t found a crash; input saved under fuzz/artifacts/$t/" >&2
        exit 1
    fi
    runs=$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1)
    summary+=("$t: $runs, 0 crashes")
done
printf 'fuzz: %s\n' "${summary[@]}"
