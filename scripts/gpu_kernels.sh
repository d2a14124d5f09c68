#!/usr/bin/env bash
# The Pallas kernels on a lent GPU machine, in one call of at most 9 minutes: the kernel tests
# compiled on the GPU, then the attention benchmark table; everything is written under $OUT.
#
#   bash scripts/gpu_kernels.sh            # GPU machine (python3 with jax[cuda]); any cwd
#   SMOKE=1 bash scripts/gpu_kernels.sh    # CPU: the same steps, tiny (interpret mode, ~2 min)
#
# Steps, each under its own cap inside BUDGET_S (default 530 s; the call ends before 9 min):
#   env    nvidia-smi, jax.print_environment_info(), cuDNN version -> nvidia-smi.txt, env.txt
#   tests  pytest tests/test_kernels.py on the GPU (JAX_PLATFORMS=cuda, every test but the CPU
#          bench smoke and the CPU-only lowering test), cap TEST_CAP_S (150 s) -> pytest_kernels.log
#   bench  scripts/bench_attention.py, bf16, the priority-ordered table with --deadline_s set to
#          the time left minus 30 s (rows not started are listed as skipped)
#          -> attention_gpu.json, attention_gpu.md, bench.log
# and summary.txt: each step's exit status and wall time. At most 8 files ($OUT's limit).
# Wheels carried in .whl/ (see gpu_session.sh) are installed first when present.
set -u
cd "$(dirname "$0")/.." || exit 2
T0=$SECONDS
SMOKE=${SMOKE:-0}
BUDGET_S=${BUDGET_S:-530}
TEST_CAP_S=${TEST_CAP_S:-150}
OUT=${OUT:-/tmp/lengthgen_gpu_kernels}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false TF_CPP_MIN_LOG_LEVEL=2
if [ "$SMOKE" = 1 ]; then
  export JAX_PLATFORMS=cpu  # the tests' conftest defaults to the CPU as well
  PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
  TESTS_K="supports_rejects or lambda_mask_skips"
  PYTEST_N="-p no:xdist"
  BENCH_ARGS="--smoke"
  NAME=attention_smoke
else
  export JAX_PLATFORMS=cuda  # tests/conftest.py sets JAX_PLATFORMS=cpu when it is unset
  PY=${PY:-python3}
  TESTS_K="not bench_smoke and not on_cpu"
  PYTEST_N="-n 4"
  BENCH_ARGS="--dtype bfloat16 --iters 5"
  NAME=attention_gpu
fi
if [ -d .whl ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl >/dev/null 2>&1 || echo "wheel install failed"
  export PYTHONPATH=/tmp/site:$PWD/.whl/stub:$PWD
else
  export PYTHONPATH=$PWD
fi
left() { echo $(( BUDGET_S - (SECONDS - T0) )); }
step() {  # name, cap (s), log file, command...: the command under the cap, rc and time noted
  local name=$1 cap=$2 log=$3 t=$SECONDS; shift 3
  [ "$cap" -gt "$(left)" ] && cap=$(left)
  if [ "$cap" -le 5 ]; then echo "$name: skipped, no time left" | tee -a "$OUT/summary.txt"; return; fi
  timeout -k 10 "$cap" "$@" >"$log" 2>&1
  local rc=$?
  echo "$name: rc=$rc in $(( SECONDS - t )) s (cap $cap s)" | tee -a "$OUT/summary.txt"
}
: >"$OUT/summary.txt"
echo "python=$PY smoke=$SMOKE budget=${BUDGET_S}s JAX_PLATFORMS=$JAX_PLATFORMS" >>"$OUT/summary.txt"

{ timeout 20 nvidia-smi; timeout 20 nvidia-smi -q -d CLOCK,POWER,PERFORMANCE; } \
  >"$OUT/nvidia-smi.txt" 2>&1
step env 60 "$OUT/env.txt" $PY -c '
import jax
jax.print_environment_info()
print("devices:", jax.devices())
try:
  from jax._src.lib import cuda_versions
  print("cudnn:", cuda_versions.cudnn_get_version() if cuda_versions else None)
except Exception as e:  # the private module moved: the pip line below still names it
  print("cudnn: not read from jax:", type(e).__name__, e)
'
$PY -m pip list 2>/dev/null | grep -i -E "^(jax|jaxlib|jax-cuda[0-9]+-[a-z]+|nvidia-cudnn[-a-z0-9]*|tokamax) " \
  >>"$OUT/env.txt"

step tests "$TEST_CAP_S" "$OUT/pytest_kernels.log" $PY -m pytest -p no:cacheprovider -q -rfEs \
  $PYTEST_N -m "slow or gpu or not slow" tests/test_kernels.py -k "$TESTS_K"
tail -n 3 "$OUT/pytest_kernels.log" >>"$OUT/summary.txt"

DEADLINE=$(( $(left) - 30 ))
step bench "$(left)" "$OUT/bench.log" $PY scripts/bench_attention.py $BENCH_ARGS \
  --deadline_s "$DEADLINE" --out "$OUT/$NAME.json" --markdown "$OUT/$NAME.md"
echo "total: $(( SECONDS - T0 )) s" >>"$OUT/summary.txt"
cat "$OUT/summary.txt"
ls -la "$OUT"
