#!/bin/bash
# A kasi sweep as a Slurm job array (docs/slurm-sweep.md). Each array task runs one shard: kasi
# reads SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT and runs the points
# I, I+N, … with I = ID - MIN, N = COUNT. The store is written on the node's local disk ($TMPDIR;
# SQLite's WAL wants a local filesystem) and copied to $OUT/shard-ID.db when the task ends, also
# when it fails; a requeued task starts from that copy, so points it finished are skipped.
#
#   JOB=$(sbatch --parsable docs/slurm-sweep.sh examples/sweep-asi-exit-rate.yaml)
#   sbatch --dependency=afterok:$JOB --wrap 'node bin/kasi.js merge results/shard-*.db --into results/all.db'
#
#SBATCH --job-name=kasi-sweep
#SBATCH --array=0-3
#SBATCH --cpus-per-task=2
#SBATCH --mem=4G
#SBATCH --time=01:00:00
#SBATCH --output=kasi-sweep-%A_%a.log
set -euo pipefail
SWEEP="${1:-examples/sweep-asi-exit-rate.yaml}"
OUT="${OUT:-results}"
KASI="${KASI:-node bin/kasi.js}"
cd "${SLURM_SUBMIT_DIR:-.}"
mkdir -p "$OUT"
ID="${SLURM_ARRAY_TASK_ID:?run this script with sbatch (a job array)}"
LOCAL="$(mktemp -d "${TMPDIR:-/tmp}/kasi-shard-XXXXXX")"
trap 'rm -rf "$LOCAL"' EXIT
if [ -f "$OUT/shard-$ID.db" ]; then cp "$OUT/shard-$ID.db" "$LOCAL/shard.db"; fi
status=0
$KASI sweep "$SWEEP" --workers "${SLURM_CPUS_PER_TASK:-1}" --db "$LOCAL/shard.db" ${KASI_SWEEP_ARGS:-} || status=$?
# the points stored so far, also after a failure (a requeued task starts from them)
if [ -f "$LOCAL/shard.db" ]; then cp "$LOCAL/shard.db" "$OUT/shard-$ID.db.part" && mv "$OUT/shard-$ID.db.part" "$OUT/shard-$ID.db"; fi
exit $status
