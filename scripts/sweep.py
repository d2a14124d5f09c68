"""Runs a grid (encodings x positions x normalizers x tasks x seeds) into one directory: the
``lengthgen-sweep`` command (``lengthgen.sweeps.cli``; its docstring and ``--help`` give every
flag), run from a checkout.

  .venv/bin/python scripts/sweep.py --config=demo:tiny --dir=/tmp/sweep \
      --encodings=nope,rope --normalizers=softmax --tasks=copy --seeds=0,1 \
      --set=train.steps=50                                   # local processes (default)
  .venv/bin/python scripts/sweep.py ... --engine=ray --ray_address=auto
  .venv/bin/python scripts/sweep.py ... --engine=slurm --slurm_partition=gpu --gpus_per_point=1
"""

from lengthgen.sweeps.cli import run

if __name__ == '__main__':
  run()
