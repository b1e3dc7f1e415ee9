#!/usr/bin/env bash
# Side-by-side benchmark: aihub-watcher vs the inotifywait | curl script, every workload of
# issue 6, against the project's simulator on 127.0.0.1. Writes bench/RESULTS.md (and the raw
# numbers to bench/out/results.json). Takes 10-14 minutes on a 2-core machine; hard limit 15.
#
#   bash bench/run_all.sh [compare.py options, e.g. --quick or --only burst] [--multihost]
#
# --multihost: afterwards, bench/multihost_bench.py (one and two hosts on PostgreSQL, SQLite for
# reference; needs the server of $AIHUB_WATCHER_BENCH_PG) updates its section of RESULTS.md.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
multihost=0
args=()
for arg in "$@"; do
    if [ "$arg" = "--multihost" ]; then multihost=1; else args+=("$arg"); fi
done
set -- ${args[@]+"${args[@]}"}
root=$PWD
python=${PYTHON:-$root/.venv/bin/python}
[ -x "$python" ] || { echo "no $python: create the venv first (see README)" >&2; exit 2; }

# Public tools the workloads use; installed quietly when missing (Debian/Ubuntu).
missing=()
for pair in inotifywait:inotify-tools hyperfine:hyperfine curl:curl; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing ${missing[*]} ..."
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# py-spy only feeds the "where the time goes" section; the benchmark runs without it.
if [ ! -x "$(dirname "$python")/py-spy" ] && ! command -v py-spy >/dev/null 2>&1; then
    "$python" -m pip install -q py-spy >/dev/null 2>&1 || echo "py-spy unavailable: no profile section"
fi

# The daemon runs from a venv with the runtime dependencies only, as `pip install .` gives a user
# (bench_lib.DAEMON_PYTHON); `python -m watcher` with cwd = the checkout still runs this code.
runtime="$root/bench/out/runtime-venv"
if [ ! -x "$runtime/bin/python" ]; then
    python3 -m venv "$runtime"
fi
extra=""
[ "$multihost" -eq 0 ] || extra="[postgres]"
"$runtime/bin/pip" install -q "$root$extra" >/dev/null 2>&1 || { echo "runtime venv: pip install failed" >&2; exit 2; }
export BENCH_DAEMON_PYTHON="$runtime/bin/python"

work=$(mktemp -d /tmp/aihub-bench.XXXXXX)
export BENCH_PIDFILE="$work/pids"
: >"$BENCH_PIDFILE"
harness=""

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [ -n "$harness" ] && kill -0 "$harness" 2>/dev/null; then
        kill -TERM "$harness" 2>/dev/null || true
        sleep 2
        kill -KILL "$harness" 2>/dev/null || true
    fi
    # Every simulator, daemon, baseline pipeline and profiler the harness started leads its own
    # process group, listed in the pid file. The harness stops them itself; this is for when it
    # was killed: stop each group still led by one of ours, by its id.
    if [ "$status" -ne 0 ]; then
        while read -r pgid; do
            [ -n "$pgid" ] || continue
            cmd=$({ tr '\0' ' ' <"/proc/$pgid/cmdline"; } 2>/dev/null) || continue
            case "$cmd" in
            *watcher*|*baseline_inotify_curl*|*py-spy*) kill -KILL -- "-$pgid" 2>/dev/null || true ;;
            esac
        done <"$BENCH_PIDFILE"
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started=$(date +%s)
timeout --signal=TERM --kill-after=20 15m \
    "$python" bench/compare.py --workdir "$work/run" --budget-seconds 840 "$@" &
harness=$!
wait "$harness"
if [ "$multihost" -eq 1 ]; then
    harness=""
    timeout --signal=TERM --kill-after=20 10m "$python" bench/multihost_bench.py --workdir "$work/multihost" &
    harness=$!
    wait "$harness"
fi
took=$(($(date +%s) - started))
echo "run_all.sh: done in $((took / 60)) min $((took % 60)) s; see bench/RESULTS.md"
