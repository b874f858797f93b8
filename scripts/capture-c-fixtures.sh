#!/bin/bash
# capture-c-fixtures.sh: record real live-update state streams written by C
# xenstored 4.17 and the daemon's answers after restoring them, as test
# fixtures in test/fixtures/c-xenstored/.
#
# usage: bash scripts/capture-c-fixtures.sh [SCENARIO...]
#        (default: all of basic perms watches pending domains large)
#
# Needs the xenstored-ref kit (README: /work/shared/peers/xenstored-ref), which
# runs Debian's unmodified C xenstored 4.17 without a hypervisor, already set up
# (its setup.sh). Environment: XS_REF_KIT (kit folder, default
# /work/shared/peers/xenstored-ref), XS_REF_HOME (kit cache, default
# /var/cache/xenstored-ref).
#
# For each scenario the script starts a fresh C xenstored in a temporary
# RUNDIR with XS_SHIM_SAVE_STATE set (the shim keeps a copy of the state file
# the daemon writes), lets scripts/capture-c-fixtures.py build the state over
# raw socket connections (the kit's tools/xsraw.py), runs
# `xenstore-control.sh live-update <same binary>` whenever the Python side
# asks for it ("LU" / "DONE <rc> <file>" line protocol over a coproc), lets
# the Python side probe the restored daemon, stops the daemon (also on
# failure: trap) and writes, per scenario:
#
#   <scenario>.bin      the state file of the LAST live update (the stream the
#                       daemon restored before answering the probes)
#   <scenario>.luN.bin  earlier dumps when a scenario does several updates
#                       (only `perms`: perms.lu1.bin, see its description)
#   <scenario>.json     what the daemon answered, see below
#   <scenario>.txt      record-by-record decoding of the .bin plus `xxd | head -40`
#                       (for humans; the decoder is in the .py, not the
#                       simulator's reader)
#
# Rerunning regenerates everything; a failed scenario keeps its old files and
# makes the script exit non-zero. C 4.17's stream has no timestamps or
# generation counts, so unchanged behaviour gives byte-identical files.
#
# JSON shape (<scenario>.json)
# ---------------------------
# {
#   "scenario": "basic",
#   "description": "what the state contains and why",
#   "capture": { "xenUtilsVersion": "4.17.5+72-g01140da4e8-1",
#                "xenstoredSha256": "...", "liveUpdateCommand": "..." },
#   "stream": { "file": "basic.bin", "bytes": 536, "sha256": "...",
#               "header": { "ident": "xenstore", "version": 1, "flagsHex": "00000000" },
#               "recordOrder": [ {"type": "GLOBAL_DATA", "count": 1},
#                                {"type": "CONNECTION_DATA", "count": 2}, ... ],
#               "connections": [ {"connId": 1, "type": "ring", "domid": 0, "tdomid": 32756,
#                                 "evtchn": 16, "inDataLen": 0, "outRespLen": 0,
#                                 "outDataLen": 0, "label": "dom0 ring"},
#                                {"connId": 2, "type": "socket", "fd": 8, ..., "label": "A"},
#                                {..., "label": "xenstore-control"} ],
#                   // decoded from the .bin; socket connections are labelled
#                   // by creation order (the order C writes them in)
#               "allLenMultipleOf8": true,
#               "intermediateDumps": [ {"file": "perms.lu1.bin", ...} ]   // perms only
#             },
#   "setup":  [ STEP, ... ],   // requests that built the state, BEFORE the update
#   "probes": [ STEP, ... ],   // requests/observations AFTER the (last) update, in order
#   "tree":   [ {"path": "/", "perms": ["n0"], "value": "", "valueHex": ""}, ... ]
#             // pre-order walk (children in DIRECTORY order) right after the
#             // update, before the probes change anything (null for `large`;
#             // for `watches`/`pending` it is taken at the end of the probes).
#             // "value" is omitted when the bytes are not NUL-free UTF-8.
#   "treeDigest": { "nodes": N, "sha256": "...", "canonicalForm": "..." }
# }
#
# STEP, request/reply (op = the XS_ message name):
#   { "conn": "probe",               // connection label, see below
#     "op": "READ", "args": ["/a/b"], // human-readable arguments; a binary one is {"hex": ".."}
#     "payloadHex": "2f612f6200",     // exact request payload sent (authoritative)
#     "reqId": 257, "txId": 0,
#     "replyType": "READ" | "ERROR" | ...,
#     "replyReqId": 257, "replyTxId": 0,
#     "replyHex": "68656c6c6f",       // exact reply payload (authoritative)
#     "reply": ...                    // convenience decoding, on success:
#                                     //  READ: string, or null if not NUL-free UTF-8
#                                     //  DIRECTORY / GET_PERMS: array of strings
#                                     //  DIRECTORY_PART: {"generation": "..", "children": [..]}
#                                     //  others: payload without its trailing NUL ("OK", "T", path)
#     "error": "ENOENT",              // instead of "reply" when replyType is ERROR
#     "note": "..." }                 // optional
# STEP, watch events seen on a connection since its previous WATCH_EVENTS step
#   (including events that arrived while it waited for a reply; the collector
#   waits until 0.3 s pass with nothing new, 0.5 s right after the update):
#   { "conn": "A", "op": "WATCH_EVENTS",
#     "events": [ {"path": "/w/abs/x", "token": "tokA-abs", "payloadHex": ".."} ] }
# STEP, raw bytes (partial requests, `pending` only):
#   { "conn": "Q", "op": "RAW_SEND", "bytesHex": "..." }
#   { "conn": "Q", "op": "RAW_REPLY", "forOp": "WRITE", "replyType": .., "replyReqId": ..,
#     "replyTxId": .., "replyHex": .., "reply"/"error": .. }
#
# Connection labels: "setup" (builds the state, closed before the update
# unless stated), "probe" (opened after the update), and scenario ones kept
# open ACROSS the update: watches: "A", "B"; pending: "P" "Q" "R" "S" "T".
# All are dom0 socket connections to the daemon's Unix socket. Kept connections
# appear in the stream as socket CONNECTION_DATA records in the order they
# were opened, after dom0's ring connection and before the connection of
# xenstore-control (which carries the live-update "OK" in its output data).
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
kit=${XS_REF_KIT:-/work/shared/peers/xenstored-ref}
export XS_REF_HOME=${XS_REF_HOME:-/var/cache/xenstored-ref}
bin=$XS_REF_HOME/usr/lib/xen-4.17/bin/xenstored
py=/usr/bin/python3
helper=$here/capture-c-fixtures.py
outdir=$repo/test/fixtures/c-xenstored
max_bin_bytes=$((200 * 1024))
all_scenarios=(basic perms watches pending domains large)

die() { echo "capture-c-fixtures: $*" >&2; exit 1; }

[ -x "$py" ] || die "$py not found"
[ -f "$kit/start-cxenstored.sh" ] || die "kit not found in $kit (set XS_REF_KIT)"
[ -x "$bin" ] || die "C xenstored not found at $bin: run $kit/setup.sh"
[ -f "$kit/tools/xsraw.py" ] || die "$kit/tools/xsraw.py missing"

if [ $# -gt 0 ]; then
    scenarios=("$@")
    for s in "${scenarios[@]}"; do
        case " ${all_scenarios[*]} " in *" $s "*) ;; *) die "unknown scenario $s";; esac
    done
else
    scenarios=("${all_scenarios[@]}")
fi

# Short base path: AF_UNIX socket paths must stay below 108 bytes.
work=$(mktemp -d /tmp/xs-capture.XXXXXX) || die "mktemp failed"
py_pid=

cleanup() {
    local rc=$?
    if [ -n "$py_pid" ] && kill -0 "$py_pid" 2>/dev/null; then
        kill "$py_pid" 2>/dev/null
    fi
    local r
    for r in "$work"/*/run; do
        [ -f "$r/xenstored.pid" ] && "$kit/stop-cxenstored.sh" "$r" >/dev/null 2>&1
    done
    rm -rf "$work"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

xen_version=$(cat "$XS_REF_HOME/.xen-utils-version" 2>/dev/null || echo unknown)
bin_sha=$(sha256sum "$bin" | cut -d' ' -f1)
export CAPTURE_XEN_VERSION=$xen_version CAPTURE_BIN_SHA256=$bin_sha
export CAPTURE_LU_CMD="xenstore-control.sh live-update \$XS_REF_HOME/usr/lib/xen-4.17/bin/xenstored"
export PYTHONPATH=$kit/tools PYTHONDONTWRITEBYTECODE=1

# capture SCENARIO: everything for one scenario, results in $work/out/
capture() {
    local scen=$1 d=$work/$1
    local run=$d/run save=$d/save stage=$work/out
    mkdir -p "$save" "$stage"
    local start_out
    start_out=$(XS_SHIM_SAVE_STATE=$save "$kit/start-cxenstored.sh" "$run") \
        || { echo "$scen: daemon did not start" >&2; return 1; }
    local pid sock
    pid=$(sed -n 's/^pid=//p' <<<"$start_out")
    sock=$(sed -n 's/^XENSTORED_PATH=//p' <<<"$start_out")
    [ -n "$pid" ] && [ -S "$sock" ] || { echo "$scen: bad start output: $start_out" >&2; return 1; }

    local to_py from_py
    coproc PYC { exec "$py" "$helper" run "$scen" "$sock" "$d/$scen.json" 2>"$d/py.log"; }
    py_pid=$PYC_PID
    # duplicate the coproc fds: bash unsets PYC when the coprocess exits
    exec {to_py}>&"${PYC[1]}" {from_py}<&"${PYC[0]}"

    local line ok=0 dumps=() n_before rc newest
    while IFS= read -r -t 300 line <&"$from_py"; do
        case $line in
            LU)
                n_before=$(find "$save" -name 'state_dump.*' | wc -l)
                XENSTORED_PATH=$sock timeout 60 "$kit/xenstore-control.sh" live-update "$bin" \
                    >>"$d/lu.log" 2>&1
                rc=$?
                if ! kill -0 "$pid" 2>/dev/null; then
                    echo "$scen: xenstored died during the live update" >&2; rc=99
                fi
                if grep -q FATAL "$run/xenstored.log" 2>/dev/null; then
                    echo "$scen: daemon log has FATAL" >&2; rc=98
                fi
                newest=$(find "$save" -name 'state_dump.*' | sort | tail -1)
                if [ "$(find "$save" -name 'state_dump.*' | wc -l)" -ne $((n_before + 1)) ]; then
                    echo "$scen: no new state dump after live update" >&2; rc=97
                fi
                dumps+=("$newest")
                echo "DONE $rc ${newest##*/}" >&"$to_py"
                ;;
            END) ok=1; break ;;
            *) echo "$scen: unexpected line from helper: $line" >&2 ;;
        esac
    done
    exec {to_py}>&-
    wait "$py_pid"
    rc=$?
    exec {from_py}<&-
    py_pid=
    "$kit/stop-cxenstored.sh" "$run" >/dev/null 2>&1
    if [ $ok -ne 1 ] || [ $rc -ne 0 ]; then
        echo "$scen: helper failed (rc $rc); its log:" >&2
        tail -30 "$d/py.log" >&2
        echo "--- daemon log:" >&2
        tail -10 "$run/xenstored.log" >&2
        return 1
    fi
    [ ${#dumps[@]} -ge 1 ] || { echo "$scen: no live update happened" >&2; return 1; }

    local n=${#dumps[@]} i inter=()
    for ((i = 0; i < n - 1; i++)); do
        cp "${dumps[i]}" "$stage/$scen.lu$((i + 1)).bin"
        inter+=("$stage/$scen.lu$((i + 1)).bin")
    done
    cp "${dumps[n - 1]}" "$stage/$scen.bin"
    cp "$d/$scen.json" "$stage/$scen.json"
    local size
    size=$(stat -c %s "$stage/$scen.bin")
    [ "$size" -lt $max_bin_bytes ] || { echo "$scen: $scen.bin is $size bytes (limit $max_bin_bytes)" >&2; return 1; }
    {
        "$py" "$helper" finalize "$stage/$scen.json" "$stage/$scen.bin" "${inter[@]}" || exit 1
        echo
        echo "xxd $scen.bin | head -40"
        xxd "$stage/$scen.bin" | head -40
    } >"$stage/$scen.txt" || { echo "$scen: decoding the stream failed" >&2; return 1; }
    return 0
}

failed=()
mkdir -p "$outdir"
for s in "${scenarios[@]}"; do
    printf '%-8s ' "$s"
    if capture "$s"; then
        rm -f "$outdir/$s".*
        cp "$work/out/$s".* "$outdir/"
        for f in "$work/out/$s".*; do printf '%s=%s ' "${f##*/}" "$(stat -c %s "$f")"; done
        echo
    else
        failed+=("$s")
        echo "FAILED (old fixture files kept)"
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "failed: ${failed[*]}" >&2
    exit 1
fi
echo "fixtures in ${outdir#"$repo"/}"
