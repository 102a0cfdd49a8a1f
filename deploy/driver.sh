#!/bin/bash
# The driver pod of a LoadTest that `grpclab loadtest` wrote (bench/remote/loadtest.py): the lab runs the
# shard's cells over the test's workers, then prints the shard's run directory into its own log, the one
# thing of a finished pod that stays readable (`kubectl logs`, test-infra's runner saves it).
#
# From the LoadTest: GRPCLAB_SHARD (the run directory's name), GRPCLAB_SPEC (the shard's spec, TOML).
# From test-infra's controller: QPS_WORKERS_FILE (written by the ready init container: IP:PORT of every
# worker, servers first), POD_TIMEOUT and KILL_AFTER (the test's time limit).
set -u -o pipefail
: "${GRPCLAB_SHARD:?set by the LoadTest}" "${GRPCLAB_SPEC:?set by the LoadTest}"
: "${QPS_WORKERS_FILE:?set by test-infra for the driver pod}"

POD_TIMEOUT=${POD_TIMEOUT:-86400}  # the controller always sets it; a day when run by hand
work=$(mktemp -d)
printf '%s' "$GRPCLAB_SPEC" > "$work/shard.toml"
# Leave a minute of the pod's time to print the results; a run cut short keeps its finished repetitions.
seconds=$(( ${POD_TIMEOUT%.*} > 120 ? ${POD_TIMEOUT%.*} - 60 : ${POD_TIMEOUT%.*} ))
status=0
timeout --kill-after="${KILL_AFTER:-30}" "$seconds" \
    grpclab run "$work/shard.toml" --hosts "@$QPS_WORKERS_FILE" --out "$work/$GRPCLAB_SHARD" || status=$?

# As test-infra's own driver ends (qps_json_driver --quit=true): every worker is told to quit, so the worker
# pods end Succeeded instead of running into their time limit.
python - "$QPS_WORKERS_FILE" <<'PY' || true
import sys
from pathlib import Path

from bench.remote.driver import quit_worker
from bench.run.hosts import split_list

for worker in split_list(Path(sys.argv[1]).read_text()):
    try:
        quit_worker(worker)
    except Exception as exc:  # a worker already gone is no reason to lose the results
        print(f"QuitWorker {worker}: {exc}", file=sys.stderr)
PY

if [ -f "$work/$GRPCLAB_SHARD/manifest.json" ]; then
    echo "=== grpclab run directory $GRPCLAB_SHARD begin (tar.gz, base64)"
    tar -C "$work" -czf - --exclude=report "$GRPCLAB_SHARD" | base64
    echo "=== grpclab run directory $GRPCLAB_SHARD end"
fi
exit "$status"
