#!/usr/bin/env bash
# Render CLEVR-Remv on a Slurm cluster: a job array of render jobs, then one small job that
# checks every shard and writes the per-split files and dataset.json once the array has ended
# (afterany: it also runs if some jobs failed, and then lists the missing shards and the exact
# commands that render them).
#
#   OUT=/shared/clevr-remv SCENES=10000 JOBS=100 examples/slurm/submit.sh [extra render options]
#
# Any extra options (e.g. --quality final) go to every render job; re-running this script
# resumes: complete shards are skipped.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export OUT=${OUT:?set OUT to a directory on a filesystem every node mounts}
export SCENES=${SCENES:-10000}
export CLEVR_REMV=${CLEVR_REMV:-clevr-remv}
JOBS=${JOBS:-100}
mkdir -p logs "$OUT"

array_job=$(sbatch --parsable --export=ALL --array="0-$((JOBS - 1))" "$here/render.sbatch" "$@")
array_job=${array_job%%;*}   # --parsable prints "jobid[;cluster]"
finalize_job=$(sbatch --parsable --dependency="afterany:${array_job}" --job-name=clevr-remv-finalize \
    --time=01:00:00 --mem=4G --output="logs/clevr-remv-finalize-%j.out" \
    --wrap "$(printf '%q ' "$CLEVR_REMV" finalize "$OUT")")
echo "render array: job ${array_job} (${JOBS} jobs); finalize: job ${finalize_job} (after the array)"
