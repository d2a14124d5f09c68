#!/usr/bin/env bash
# One call on a lent GPU machine: stages in order, each under its own time limit, results
# written into the repo's benchmarks/ and results/ and packed into $OUT/results.tgz.
#
#   bash scripts/gpu_session.sh env kernels bench_attention bench_train sweep:copy sweep:parity
#
# Stages: env | kernels (pytest, compiled kernels vs the reference) | bench_attention (as much
# of the table as fits in 170 s; scripts/gpu_kernels.sh runs tests and the whole table) |
# bench_train | sweep:<name> (the grids below, 3 seeds vmapped per grid point) |
# context_extension (scripts/context_extension.py at head dim 128, 3 seeds). DEADLINE
# (seconds, default 570) stops starting stages once passed; each stage is cut at the deadline.
# Wheels carried in .whl/ (ml_collections and exact flax/orbax versions; tokamax and its
# dependencies for the attention baseline) are installed first when present.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/lengthgen_gpu_out}
DEADLINE=${DEADLINE:-570}
LOGS=$PWD/gpu_logs  # packed into results.tgz ($OUT takes at most 8 files)
mkdir -p "$OUT" "$LOGS"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl >"$LOGS/pip.log" 2>&1 || echo "wheel install failed"
  export PYTHONPATH=/tmp/site:$PWD/.whl/stub:$PWD
else
  export PYTHONPATH=$PWD
fi
PY=python3
SEEDS="--seeds=0,1,2 --vmap_seeds"

left() { echo $(( DEADLINE - SECONDS )); }

sweep() {  # name, config, extra sweep args...
  local name=$1 config=$2; shift 2
  $PY scripts/sweep.py --config="$config" --dir="results/$name" $SEEDS "$@"
}

stage() {
  case "$1" in
    env)
      nvidia-smi -L
      $PY -c "import jax, flax, optax, orbax.checkpoint as o, ml_collections, diffrax; \
print('jax', jax.__version__, jax.devices(), 'flax', flax.__version__, 'optax', optax.__version__)" ;;
    kernels)  # JAX_PLATFORMS=cuda: tests/conftest.py sets it to cpu when it is unset
      JAX_PLATFORMS=cuda $PY -m pytest -p no:cacheprovider -q -m "slow or gpu or not slow" \
        tests/test_kernels.py -k "not bench_smoke and not on_cpu" -n 4 -x 2>&1 | tail -40 ;;
    bench_attention)  # the rows that fit in the stage's cap, in priority order (the whole
      # table within 9 minutes: scripts/gpu_kernels.sh)
      $PY scripts/bench_attention.py --iters 5 --deadline_s $(( $(left) < 170 ? $(left) - 30 : 140 )) \
        --out benchmarks/attention_gpu.json --markdown benchmarks/attention_gpu.md ;;
    bench_train)
      $PY scripts/bench_train.py --out benchmarks ;;
    sweep:copy)
      sweep kazemnejad_copy kazemnejad_copy \
        --encodings=nope,t5,alibi,rope,sinusoidal --parallel=5 ;;
    sweep:copy_repeat_change)
      sweep kazemnejad_copy_repeat_change kazemnejad_copy:repeat_change \
        --encodings=nope,t5,alibi --parallel=3 ;;
    sweep:parity)
      sweep parity parity --encodings=nope,t5,sinusoidal --parallel=3 ;;
    sweep:count)
      sweep count count --encodings=nope,alibi,rope --parallel=3 ;;
    sweep:abacus)
      sweep abacus_addition abacus_addition \
        --encodings=abacus,nope,rope --parallel=3
      sweep abacus_addition_fire_hints abacus_addition:index_hints \
        --encodings=fire --positions=randomized ;;
    sweep:recall)
      sweep softplus_recall softplus_recall --encodings=rope \
        --normalizers=softmax,ssmax,ssmax+qk_norm,softplus,softplus_reweight --parallel=5 ;;
    sweep:recall_stream)  # the LM-style check: loss versus length, trained at T, evaluated to 8T
      sweep softplus_recall_stream softplus_recall:stream --encodings=rope \
        --normalizers=softmax,ssmax+qk_norm,softplus_reweight --parallel=3 ;;
    sweep:hinting)  # task hinting, full size (sort, train 1..20, evaluate 1..120)
      for p in none successor identity_successor successor_each temperature; do
        sweep "task_hinting_$p" "task_hinting:${p/none/}" --encodings=nope
      done ;;
    sweep:rasp_l)  # Zhou et al.'s mode, unique copy and copy with repeated tokens
      for t in mode unique repeat; do
        sweep "rasp_l_$t" "rasp_l:$t" --encodings=learned --positions=offset
      done ;;
    sweep:clex)
      sweep clex_copy clex_copy --encodings=clex,rope,rope_ntk,nope \
        --parallel=4 ;;
    sweep:chomsky)
      # relative: Transformer-XL's encoding (Deletang's baseline); its randomized point takes
      # the distances of randomized positions. Ruoss et al.'s randomized relative encoding
      # samples the distances (random_distances), in its own directory.
      for t in even_pairs reverse_string missing_duplicate_string bucket_sort; do
        sweep "chomsky_$t" "chomsky:$t" --encodings=sinusoidal,rope,relative \
          --positions=default,randomized --parallel=4
        sweep "chomsky_${t}_random_distances" "chomsky:$t" --encodings=relative \
          --set='model.positional_options={"random_distances": 2048}' --parallel=4
      done ;;
    context_extension)  # head dim 128, 257-token parents: YaRN's ramp keeps its fast pairs
      $PY scripts/context_extension.py --out results/context_extension_gpu --steps 10000 \
        --fine_tune_steps 1000 --train_max 128 --factor 2 --seeds 0,1,2 --num_layers 4 \
        --width 256 --num_heads 2 ;;
    *) echo "unknown stage $1"; return 2 ;;
  esac
}

export -f stage sweep left
export PY SEEDS
limit() {  # a stage's own cap (seconds), within what is left before the deadline
  local cap
  case "$1" in kernels) cap=150 ;; bench_attention) cap=170 ;; bench_train) cap=90 ;;
    *) cap=100000 ;; esac
  local l; l=$(left); echo $(( cap < l ? cap : l ))
}
for s in "$@"; do
  if [ "$(left)" -le 10 ]; then echo "== skip $s: deadline"; continue; fi
  echo "== $s (t=${SECONDS}s, $(left)s left)"
  # timeout runs the stage in its own process group and stops all of it (only it) at the limit
  DEADLINE=$(( DEADLINE - SECONDS )) timeout -k 5 "$(limit "$s")" bash -c "SECONDS=0; stage $s" \
    > "$LOGS/${s//:/_}.log" 2>&1
  echo "== $s exit $? at t=${SECONDS}s"; tail -n 25 "$LOGS/${s//:/_}.log"
done
tar czf "$OUT/results.tgz" --exclude='checkpoints' --exclude='*.corrupt' benchmarks results \
  gpu_logs
ls -la "$OUT"
