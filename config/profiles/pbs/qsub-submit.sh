#!/usr/bin/env bash
# Submit one Snakemake job script to PBS; the cluster-generic executor calls this (see
# config.yaml in this folder) and appends the job script:
#   qsub-submit.sh RULE THREADS MEM_MB RUNTIME_MIN JOBSCRIPT
# The walltime goes to qsub as HH:MM:SS, so runtimes of an hour or more (the train rules ask
# for 240 min) are valid PBS durations. qsub prints the job id, which Snakemake records.
# PBS writes each job's output to $XCLUSTERS_PBS_LOG_DIR (default logs/pbs).
set -euo pipefail
if [ "$#" -ne 5 ]; then
  echo "usage: $0 RULE THREADS MEM_MB RUNTIME_MIN JOBSCRIPT" >&2
  exit 2
fi
rule=$1 threads=$2 mem_mb=$3 runtime_min=$4 jobscript=$5
for pair in "threads:$threads" "mem_mb:$mem_mb" "runtime:$runtime_min"; do
  value=${pair#*:}
  case "$value" in
    '' | *[!0-9]*)
      echo "qsub-submit.sh: rule $rule: resource ${pair%%:*} = '$value' must be a whole number" \
           "(set it in the rule's resources: or the profile's default-resources)" >&2
      exit 2 ;;
  esac
done
walltime=$(printf '%02d:%02d:00' $((10#$runtime_min / 60)) $((10#$runtime_min % 60)))
log_dir=${XCLUSTERS_PBS_LOG_DIR:-logs/pbs}
mkdir -p "$log_dir"
exec qsub -V -N "smk.$rule" -l "select=1:ncpus=$threads:mem=${mem_mb}mb" \
  -l "walltime=$walltime" -o "$log_dir" -j oe "$jobscript"
