"""Runs a grid (encodings x normalizers x tasks x seeds) into one directory of workdirs.

  .venv/bin/python scripts/sweep.py --config=experiments/configs/demo.py:tiny --dir=/tmp/sweep \
      --encodings=nope,rope --normalizers=softmax --tasks=copy --seeds=0,1 \
      --set=train.steps=50

One workdir per grid point (`<task>_<encoding>_<normalizer>_s<seed>`), each trained by
`experiments.train` in a subprocess. Resumable: a workdir with results.json is skipped; an
interrupted one resumes through train_and_evaluate's own checkpoints. Seeds run as separate
workdirs (TrainConfig.num_seeds is not used yet). Writes summary.md, summary.csv and
accuracy_vs_length_<task>.png into the sweep directory.
"""

import argparse
import itertools
import os
import subprocess
import sys
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)

from lengthgen import analysis  # pylint: disable=g-import-not-at-top


def _split(s):
  return [x for x in s.split(',') if x]


def grid_points(encodings, normalizers, tasks, seeds):
  """Yields (name, overrides) per grid point."""
  for task, enc, norm, seed in itertools.product(tasks, encodings, normalizers, seeds):
    yield (f'{task}_{enc}_{norm}_s{seed}',
           [f'--config.task={task}', f'--config.model.positional={enc}',
            f'--config.model.normalizer={norm}', f'--config.train.seed={seed}'])


def plot_sweep(rows, sweep_dir):
  """Accuracy vs length per encoding (mean over seeds, +-std band), one figure per task."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  paths = []
  for task in sorted({r['task'] for r in rows}):
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
      if r['task'] != task or not r['curve']:
        continue
      n, m, s = zip(*r['curve'])
      label = f"{r['positional']}/{r['normalizer']} (n={r['num_seeds']})"
      ax.plot(n, m, marker='o', ms=3, label=label)
      ax.fill_between(n, [a - b for a, b in zip(m, s)], [a + b for a, b in zip(m, s)], alpha=0.2)
    ax.set(xlabel='length', ylabel='exact match', title=task, ylim=(-0.02, 1.02))
    ax.legend(fontsize=7)
    path = os.path.join(sweep_dir, f'accuracy_vs_length_{task}.png')
    fig.savefig(path, dpi=100, bbox_inches='tight')
    plt.close(fig)
    paths.append(path)
  return paths


def summarize(sweep_dir):
  """Writes summary.md / summary.csv / figures; returns the aggregated rows."""
  rows = analysis.aggregate_over_seeds(analysis.load_sweep(sweep_dir))
  with open(os.path.join(sweep_dir, 'summary.md'), 'w') as f:
    f.write(analysis.table_markdown(rows))
  with open(os.path.join(sweep_dir, 'summary.csv'), 'w') as f:
    f.write(analysis.table_csv(rows))
  plot_sweep(rows, sweep_dir)
  return rows


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--config', required=True, help='config file[:preset]')
  p.add_argument('--dir', required=True, help='sweep directory')
  p.add_argument('--encodings', default='nope')
  p.add_argument('--normalizers', default='softmax')
  p.add_argument('--tasks', default='copy')
  p.add_argument('--seeds', default='0')
  p.add_argument('--set', action='append', default=[], help='key=value config override')
  a = p.parse_args(argv)
  os.makedirs(a.dir, exist_ok=True)
  extra = [f'--config.{kv}' for kv in a.set]
  seeds = [int(s) for s in _split(a.seeds)]
  for name, overrides in grid_points(_split(a.encodings), _split(a.normalizers),
                                     _split(a.tasks), seeds):
    wd = os.path.join(a.dir, name)
    if os.path.exists(os.path.join(wd, 'results.json')):
      print(f'skip {name} (finished)', flush=True)
      continue
    t0 = time.time()
    cmd = [sys.executable, '-m', 'experiments.train', f'--config={a.config}',
           f'--workdir={wd}', *overrides, *extra]
    subprocess.run(cmd, check=True, cwd=_ROOT)
    print(f'done {name} in {time.time() - t0:.1f}s', flush=True)
  rows = summarize(a.dir)
  print(analysis.table_markdown(rows))


if __name__ == '__main__':
  main()
