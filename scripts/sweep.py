"""Runs a grid (encodings x positions x normalizers x tasks x seeds) into one directory.

  .venv/bin/python scripts/sweep.py --config=demo:tiny --dir=/tmp/sweep \
      --encodings=nope,rope --normalizers=softmax --tasks=copy --seeds=0,1 \
      --set=train.steps=50

`--config` is a config name or file, with its presets, as for `lengthgen-train`. One workdir
per grid point (`<task>_<encoding>[_<positions>]_<normalizer>_s<seed>`), each trained by
`python -m lengthgen.cli` (`lengthgen-train`) in a subprocess. With `--vmap_seeds` the seeds
of a grid point train in one program (`train.num_seeds`, vmapped: one workdir
`..._s<first>x<count>`), which is what keeps a GPU busy with small models; `--parallel N`
runs N workdirs at once (each process then takes 1/N of the GPU memory). Resumable: a
workdir with results.json is skipped when its config.json equals the config the point would
train now (a finished point with another config is reported, and the sweep stops before
training anything, unless `--new_run_changed` retrains it with `--new_run`, keeping the old
run under previous_runs/); an interrupted one resumes through train_and_evaluate's own
checkpoints. Interrupting the sweep (Ctrl-C, SIGTERM, or killing it) stops its trainers.
Writes summary.md, summary.csv (mean ± std over seeds, compute) and
accuracy_vs_length_<task>*.png, each replaced whole.
"""

import argparse
import ctypes
import itertools
import json
import os
import signal
import subprocess
import sys
import time

from lengthgen import analysis, configs
from lengthgen.config import NORMALIZER_MODIFIERS


def _split(s):
  return [x for x in s.split(',') if x]


def normalizer_overrides(norm):
  """``ssmax+qk_norm`` -> the flags setting normalizer=ssmax and model.qk_norm=True."""
  base, *mods = norm.split('+')
  unknown = [m for m in mods if m not in NORMALIZER_MODIFIERS]
  if unknown:
    raise ValueError(f'normalizer {norm!r}: unknown modifier(s) {unknown}; valid modifiers '
                     f'(joined with +): {", ".join(NORMALIZER_MODIFIERS)}')
  return ([f'--config.model.normalizer={base}']
          + [f'--config.model.{m}=True' for m in mods])


def grid_points(encodings, normalizers, tasks, seeds, positions=('default',), vmap_seeds=False):
  """Yields (name, overrides) per grid point (per seed, or per seed group with vmap_seeds).

  A normalizer may carry modifiers joined with ``+`` (``ssmax+qk_norm``), as results.json
  names it."""
  groups = [(seeds[0], len(seeds))] if vmap_seeds else [(s, 1) for s in seeds]
  for task, enc, pos, norm, (seed, count) in itertools.product(
      tasks, encodings, positions, normalizers, groups):
    where = '' if pos == 'default' else f'_{pos}'
    which = f's{seed}x{count}' if vmap_seeds else f's{seed}'
    overrides = [f'--config.task={task}', f'--config.model.positional={enc}',
                 f'--config.model.positions={pos}', *normalizer_overrides(norm),
                 f'--config.train.seed={seed}']
    if vmap_seeds:
      overrides.append(f'--config.train.num_seeds={count}')
    yield f'{task}_{enc}{where}_{norm}_{which}', overrides


def config_task(config_spec):
  """The task of ``name_or_file[:preset]``: what the grid trains when --tasks is not given."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  path, _, preset = configs.resolve(config_spec).partition(':')
  spec = importlib.util.spec_from_file_location('sweep_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(preset).task


def resolved_config(config_spec, overrides):
  """The config ``lengthgen-train --config=config_spec *overrides`` trains, as a dict."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  from lengthgen.config import ExperimentConfig  # pylint: disable=g-import-not-at-top
  argv = ['sweep', f'--config={configs.resolve(config_spec)}', *overrides]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', None, 'config', flag_values=values, sys_argv=argv)
  values(argv)
  return ExperimentConfig.from_dict(values.config).to_dict()


def config_difference(workdir, config):
  """The fields in which a workdir's config.json differs from ``config`` ('' if none)."""
  from lengthgen.config import ExperimentConfig  # pylint: disable=g-import-not-at-top
  from lengthgen.workdir import diff_configs  # pylint: disable=g-import-not-at-top
  try:
    with open(os.path.join(workdir, 'config.json')) as f:
      old = ExperimentConfig.from_dict(json.load(f)).to_dict()
  except (OSError, ValueError) as e:
    return f'  config.json unreadable: {e}'
  return '\n'.join(f'  {k}: {a!r} (in workdir) -> {b!r} (now)'
                   for k, a, b in diff_configs(old, config))


def _write_whole(path, text):
  """Writes a file through a temporary one, so an interruption never leaves half of it."""
  tmp = f'{path}.tmp'
  with open(tmp, 'w') as f:
    f.write(text)
  os.replace(tmp, path)


def plot_sweep(rows, sweep_dir):
  """Accuracy vs length per encoding (mean over seeds, +-std band), one figure per task and
  task options (``accuracy_vs_length_<task>[_<option>-<value>...].png``)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  paths = []
  for task in sorted({analysis.task_label(r) for r in rows}):
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
      if analysis.task_label(r) != task or not r['curve']:
        continue
      n, m, s = zip(*r['curve'])
      where = '' if r.get('positions', 'default') == 'default' else f"+{r['positions']}"
      label = f"{r['positional']}{where}/{r['normalizer']} (n={r['num_seeds']})"
      ax.plot(n, m, marker='o', ms=3, label=label)
      ax.fill_between(n, [a - b for a, b in zip(m, s)], [a + b for a, b in zip(m, s)], alpha=0.2)
    ax.set(xlabel='length', ylabel='exact match', title=task, ylim=(-0.02, 1.02))
    ax.legend(fontsize=7)
    name = task.replace('[', '_').rstrip(']').replace(',', '_').replace('=', '-')
    path = os.path.join(sweep_dir, f'accuracy_vs_length_{name}.png')
    fig.savefig(f'{path}.tmp.png', dpi=100, bbox_inches='tight')
    os.replace(f'{path}.tmp.png', path)
    plt.close(fig)
    paths.append(path)
  return paths


def summarize(sweep_dir):
  """Writes summary.md / summary.csv / figures; returns the aggregated rows."""
  rows = analysis.aggregate_over_seeds(analysis.load_sweep(sweep_dir))
  _write_whole(os.path.join(sweep_dir, 'summary.md'), analysis.table_markdown(rows))
  _write_whole(os.path.join(sweep_dir, 'summary.csv'), analysis.table_csv(rows))
  plot_sweep(rows, sweep_dir)
  return rows


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--config', required=True, help='config name or file[:presets]')
  p.add_argument('--dir', required=True, help='sweep directory')
  p.add_argument('--encodings', default='nope')
  p.add_argument('--positions', default='default', help='position samplers, e.g. '
                 'default,randomized')
  p.add_argument('--normalizers', default='softmax')
  p.add_argument('--tasks', default='',
                 help="tasks, e.g. copy,reverse (default: the config's own task)")
  p.add_argument('--seeds', default='0')
  p.add_argument('--vmap_seeds', action='store_true',
                 help='train the seeds of a grid point in one program (consecutive seeds)')
  p.add_argument('--parallel', type=int, default=1, help='workdirs trained at once')
  p.add_argument('--set', action='append', default=[], help='key=value config override')
  p.add_argument('--new_run_changed', action='store_true',
                 help='retrain finished points whose config changed (the old run is kept '
                 'under previous_runs/) instead of stopping')
  a = p.parse_args(argv)
  seeds = [int(s) for s in _split(a.seeds)]
  if a.vmap_seeds and seeds != list(range(seeds[0], seeds[0] + len(seeds))):
    p.error(f'--vmap_seeds trains consecutive seeds; got --seeds={a.seeds}')
  if a.parallel < 1:
    p.error(f'--parallel must be at least 1; got {a.parallel}')
  try:
    configs.resolve(a.config)
  except ValueError as e:
    p.error(str(e))
  os.makedirs(a.dir, exist_ok=True)
  extra = [f'--config.{kv}' for kv in a.set]
  todo, changed = [], []
  for name, overrides in grid_points(_split(a.encodings), _split(a.normalizers),
                                     _split(a.tasks) or [config_task(a.config)], seeds,
                                     _split(a.positions), a.vmap_seeds):
    wd = os.path.join(a.dir, name)
    cmd = [sys.executable, '-m', 'lengthgen.cli', f'--config={a.config}',
           f'--workdir={wd}', *overrides, *extra]
    if os.path.exists(os.path.join(wd, 'results.json')):
      difference = config_difference(wd, resolved_config(a.config, [*overrides, *extra]))
      if not difference:
        print(f'skip {name} (finished)', flush=True)
        continue
      if not a.new_run_changed:
        changed.append(f'{name}:\n{difference}')
        continue
      print(f'{name}: finished with another config; retraining it (--new_run)', flush=True)
      cmd.append('--new_run')
    todo.append((name, cmd))
  if changed:
    raise SystemExit(f'{len(changed)} finished grid point(s) hold a different config than '
                     'this sweep would train; nothing was trained. Rerun with '
                     '--new_run_changed to retrain them (their old runs are kept under '
                     'previous_runs/), or use another --dir.\n' + '\n'.join(changed))
  env = dict(os.environ)
  if a.parallel > 1:  # share one accelerator: no process may take most of its memory
    env.setdefault('XLA_PYTHON_CLIENT_MEM_FRACTION', f'{0.9 / a.parallel:.3f}')
  signal.signal(signal.SIGTERM, _interrupt)
  failed = _run_all(todo, a.parallel, env, a.dir)
  rows = summarize(a.dir)
  print(analysis.table_markdown(rows))
  if failed:
    raise SystemExit(f'{len(failed)} grid point(s) failed: {", ".join(failed)} (logs in '
                     f'<workdir>.log)')


def _interrupt(signum, frame):
  del frame
  raise KeyboardInterrupt(f'signal {signum}')


def _die_with_parent():
  """In a trainer: receive SIGTERM when the sweep dies, even by SIGKILL (Linux)."""
  try:
    ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
  except OSError:
    pass


def _stop(procs):
  """Stops trainers: SIGTERM, then SIGKILL after 10 seconds."""
  for proc in procs:
    if proc.poll() is None:
      proc.terminate()
  deadline = time.time() + 10
  for proc in procs:
    try:
      proc.wait(timeout=max(0.1, deadline - time.time()))
    except subprocess.TimeoutExpired:
      proc.kill()
      proc.wait()


def _run_all(todo, parallel, env, sweep_dir):
  """Runs the commands, at most `parallel` at once; returns the names that failed.

  An interruption stops every running trainer before it propagates.
  """
  running, failed = [], []
  try:
    _run_all_into(todo, parallel, env, sweep_dir, running, failed)
  except BaseException:
    _stop([proc for _, proc, _, _ in running])
    print(f'interrupted: stopped {len(running)} running trainer(s); rerun the same command to '
          'resume', file=sys.stderr, flush=True)
    raise
  return failed


def _run_all_into(todo, parallel, env, sweep_dir, running, failed):

  def reap(block):
    for item in list(running):
      name, proc, t0, log = item
      if proc.poll() is None and not block:
        continue
      proc.wait()
      log.close()
      running.remove(item)
      if proc.returncode:
        failed.append(name)
        print(f'FAILED {name} (exit {proc.returncode})', flush=True)
      else:
        print(f'done {name} in {time.time() - t0:.1f}s', flush=True)
      return

  for name, cmd in todo:
    while len(running) >= parallel:
      reap(block=False)
      time.sleep(0.2)
    if parallel == 1:  # one at a time: the run's own output goes to the terminal
      t0 = time.time()
      proc = subprocess.Popen(cmd, env=env, preexec_fn=_die_with_parent)
      running.append((name, proc, t0, None))
      code = proc.wait()
      running.clear()
      if code:
        failed.append(name)
        print(f'FAILED {name} (exit {code})', flush=True)
      else:
        print(f'done {name} in {time.time() - t0:.1f}s', flush=True)
      continue
    log = open(os.path.join(sweep_dir, f'{name}.log'), 'w')
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=_die_with_parent)
    running.append((name, proc, time.time(), log))
    print(f'started {name}', flush=True)
  while running:
    reap(block=True)


if __name__ == '__main__':
  main()
