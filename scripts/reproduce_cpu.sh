#!/usr/bin/env bash
# The paper reproductions at CPU scale (the `cpu` preset of each config, lengthgen/configs/
# __init__.py:cpu_scale; 2 layers x 64 wide, batch 32, lr 1e-3, 1500-3000 steps, except
# clex's 2 x 128 for 4000 steps, abacus's 2 x 128 at batch 128 for 4000 steps (41-51 min per
# encoding) and chomsky's, which keeps its model; 3 seeds trained in one program), each into
# results/<name>_cpu/ with its summary table and figure. Resumable: finished workdirs are
# skipped.
#   bash scripts/reproduce_cpu.sh                # all, in order (about 4.5 h on 2 CPU cores)
#   bash scripts/reproduce_cpu.sh copy parity    # some (also: chomsky, not run by default)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SEEDS=${SEEDS:-0,1,2}
run() {  # name config encodings [extra sweep flags...]
  local name=$1 config=$2 encodings=$3; shift 3
  echo "=== $name $(date -u +%H:%M:%S)"
  "$PY" scripts/sweep.py --config="$config" --dir="results/${name}_cpu" --encodings="$encodings" \
    --seeds="$SEEDS" --vmap_seeds "$@"
}
declare -A ALL=(
  [copy]="kazemnejad_copy kazemnejad_copy:cpu nope,t5,alibi,rope,sinusoidal"
  [copy_repeat_change]="kazemnejad_copy_repeat_change kazemnejad_copy:repeat_change,cpu nope,t5,alibi"
  [parity]="parity parity:cpu nope,t5,sinusoidal"
  [count]="count count:cpu nope,rope"
  [abacus]="abacus_addition abacus_addition:cpu abacus,nope,rope"
  [recall]="softplus_recall softplus_recall:cpu rope --normalizers=softmax,ssmax,ssmax+qk_norm,softplus_reweight"
  [clex]="clex_copy clex_copy:cpu clex,rope"
  # Not in the default order: 9-44 min per task and position sampler, measured on 2 cores
  # (3 seeds in one program). results/ruoss_chomsky_cpu/ is this with SEEDS=3,4,5.
  [chomsky]="ruoss_chomsky chomsky:cpu rope --tasks=even_pairs,bucket_sort,reverse_string,missing_duplicate_string --positions=default,randomized --set=train.steps=1000 --set=eval.stride=25"
)
ORDER=(copy copy_repeat_change parity count abacus recall clex)
for key in "${@:-${ORDER[@]}}"; do
  [[ -n "${ALL[$key]:-}" ]] || { echo "unknown reproduction $key; valid: ${ORDER[*]} chomsky"; exit 2; }
  run ${ALL[$key]}
done
echo "=== done $(date -u +%H:%M:%S)"
