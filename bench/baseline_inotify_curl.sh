#!/usr/bin/env bash
# The script an operator would otherwise write: inotifywait piped into curl, one AI Hub run per
# folder created in or moved into WATCH. It is the comparison peer of bench/compare.py, written
# plainly but fairly: the same token, headers and JSON body shape as aihub-watcher, and one
# keep-nothing curl per event. No settle, no ledger, no startup scan, no retry.
#
#   AIHUB_TOKEN=... [AIHUB_CONTEXT=acme] [PARALLEL=16] \
#     bench/baseline_inotify_curl.sh WATCH API_ROOT DEPLOYMENT_ID REMOTE_DIR
#
# PARALLEL=N (N > 1) runs the curls through `xargs -P N` instead of one after another: the
# fastest naive variant. Each posted drop prints "HTTP_STATUS NAME" on stdout.
set -u

watch=${1:?usage: $0 WATCH API_ROOT DEPLOYMENT_ID REMOTE_DIR}
api=${2:?api root, e.g. http://127.0.0.1:8080/api}
deployment=${3:?deployment id}
remote=${4:?remote dir (input_dir of WATCH as AI Hub sees it)}
: "${AIHUB_TOKEN:?set AIHUB_TOKEN}"
parallel=${PARALLEL:-0}
url="$api/v2/apps/deployments/$deployment/runs"

# Headers in a private file, so the token is not on curl's command line (visible in ps).
umask 077
headers=$(mktemp)
trap 'rm -f "$headers"' EXIT
{
    echo "Authorization: Bearer $AIHUB_TOKEN"
    echo "Content-Type: application/json"
    echo "Accept: application/json"
    echo "User-Agent: inotify-curl/1.0"
    if [ -n "${AIHUB_CONTEXT:-}" ]; then echo "IB-Context: $AIHUB_CONTEXT"; fi
} >"$headers"

body_prefix="{\"input_dir\":\"$remote/"
body_suffix="\",\"settings\":{\"tags\":[\"inotify-curl\"]}}"

# CREATE,ISDIR: a folder made in place; MOVED_TO,ISDIR: a folder renamed in. Loose files
# (close_write / moved_to of a file) are not drops in folder mode, so they are skipped.
if [ "$parallel" -gt 1 ]; then
    inotifywait -m -e close_write,moved_to,create --format '%e %f' "$watch" |
        while read -r events name; do
            case "$events" in *ISDIR*) ;; *) continue ;; esac
            name=${name//\\/\\\\} # JSON-escape the folder name
            printf '%s\0' "${name//\"/\\\"}"
        done |
        xargs -0 -r -P "$parallel" -I{} curl -sS -o /dev/null -w '%{http_code} {}\n' \
            -H @"$headers" --data-binary "$body_prefix{}$body_suffix" "$url"
else
    inotifywait -m -e close_write,moved_to,create --format '%e %f' "$watch" |
        while read -r events name; do
            case "$events" in *ISDIR*) ;; *) continue ;; esac
            json=${name//\\/\\\\} # JSON-escape the folder name
            json=${json//\"/\\\"}
            curl -sS -o /dev/null -w '%{http_code} ' -H @"$headers" \
                --data-binary "$body_prefix$json$body_suffix" "$url"
            echo "$name"
        done
fi
