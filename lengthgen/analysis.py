"""Reading finished workdirs: results.json files aggregated over seeds, tables, leaderboards,
and trained checkpoints with their attention maps.

Only reads files (workdir layout: docs/workdir.md); never trains. Shared by scripts and notebooks.
"""

import csv
import io
import json
import math
import os
from typing import Any, Iterable, Sequence

from lengthgen import extras

GROUP_KEYS = ('task', 'options', 'positional', 'positional_options', 'positions',
              'positions_options', 'normalizer', 'model')
# What records written before a field existed meant by its absence.
_DEFAULTS = {'positions': 'default', 'options': '', 'positional_options': '',
             'positions_options': ''}


def options_label(task_options: dict[str, Any] | None) -> str:
  """``{'variant': 'replace'}`` -> ``'variant=replace'`` (sorted; '' for none)."""
  return ','.join(f'{k}={v}' for k, v in sorted((task_options or {}).items()))


def _config_options(workdir: str) -> dict[str, str]:
  """The option labels of a workdir's config.json: the task's (``options``), the
  encoding's (``positional_options``) and the position sampler's (``positions_options``)."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    config = json.load(f)
  model = config.get('model') or {}
  return {'options': options_label(config.get('task_options')),
          'positional_options': options_label(model.get('positional_options')),
          'positions_options': options_label(model.get('positions_options'))}


def load_results(workdir: str) -> dict[str, Any] | None:
  """Returns the parsed DIR/results.json of one workdir, or None if it does not exist."""
  path = os.path.join(workdir, 'results.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def per_seed_records(results: dict[str, Any]) -> list[dict[str, Any]]:
  """One record per seed: a ``num_seeds`` run (vmapped seeds) is split into its seeds."""
  if 'seeds' not in results:
    return [results]
  shared = {k: v for k, v in results.items() if k not in ('seeds', 'score_over_seeds')}
  return [dict(shared, **seed) for seed in results['seeds']]


def load_sweep(sweep_dir: str) -> list[dict[str, Any]]:
  """Per-seed results of every immediate subdirectory with a results.json, sorted by name.

  Each record also gets ``workdir`` (its name), ``options`` (the task options of its
  config.json, e.g. ``variant=replace``, so variants of one task are told apart) and
  ``positional_options`` / ``positions_options`` (the encoding's and the position sampler's,
  e.g. ``random_distances=2048``, so variants of one encoding are told apart).
  """
  if not os.path.isdir(sweep_dir):
    raise ValueError(f'sweep directory {sweep_dir!r} does not exist')
  out = []
  for name in sorted(os.listdir(sweep_dir)):
    res = load_results(os.path.join(sweep_dir, name))
    if res is not None:
      options = _config_options(os.path.join(sweep_dir, name))
      out.extend(dict(_DEFAULTS, **r, **options, workdir=name)
                 for r in per_seed_records(res))
  return out


def _mean_std(xs: Sequence[float]) -> tuple[float, float]:
  """Mean and population standard deviation (0 for a single value)."""
  n = len(xs)
  mean = sum(xs) / n
  return mean, math.sqrt(sum((x - mean) ** 2 for x in xs) / n)


def aggregate_over_seeds(results: Sequence[dict[str, Any]],
                         keys: Sequence[str] = GROUP_KEYS, *,
                         curve_metric: str | None = None) -> list[dict[str, Any]]:
  """Groups results by `keys` (all but seed) and gives mean/std of scores and curves.

  Returns one row per group with the keys, `num_seeds`, `seeds`, `seconds` and `device`
  (compute of the distinct workdirs, when recorded), `resumed` (a workdir's compute covers
  only the part of a resumed run after its restart), `in_mean`, `in_std`,
  `out_mean`, `out_std`, `metric` (the score's metric, results.json's ``score.metric``:
  ``exact_match`` when unrecorded), `curve_metric` and `curve`: a list of (length, mean, std)
  over seeds, at the lengths every seed evaluated, of `curve_metric` (default: the score's
  metric; ``token_accuracy`` gives token-accuracy curves of exact-match runs).

  Raises:
    ValueError: a result misses a grouping key, the seeds of one group were scored by
      different metrics, or an evaluated length lacks `curve_metric`.
  """
  groups: dict[tuple, list[dict[str, Any]]] = {}
  for r in results:
    r = {**_DEFAULTS, **r}
    missing = [k for k in keys if k not in r]
    if missing:
      raise ValueError(f'result is missing keys {missing}; valid keys: {sorted(r)}')
    groups.setdefault(tuple(r[k] for k in keys), []).append(r)
  rows = []
  for group_key, rs in groups.items():
    in_mean, in_std = _mean_std([r['score']['in_distribution'] for r in rs])
    out_mean, out_std = _mean_std([r['score']['out_of_distribution'] for r in rs])
    metrics = sorted({r['score'].get('metric', 'exact_match') for r in rs})
    if len(metrics) > 1:
      raise ValueError(f'the seeds of {dict(zip(keys, group_key))} were scored by different '
                       f'metrics: {", ".join(metrics)}')
    metric = metrics[0]
    along = curve_metric or metric
    lacking = sorted({e['length'] for r in rs for e in r['eval'] if along not in e})
    if lacking:
      have = sorted({k for r in rs for e in r['eval'] for k in e if k != 'length'})
      raise ValueError(f'curve metric {along!r} is not recorded at lengths {lacking[:5]} of '
                       f'{dict(zip(keys, group_key))}; recorded: {", ".join(have)}')
    per_len = [{e['length']: e[along] for e in r['eval']} for r in rs]
    common = sorted(set.intersection(*(set(p) for p in per_len)))
    curve = [(n, *_mean_std([p[n] for p in per_len])) for n in common]
    compute = {r['workdir']: r['compute'] for r in rs if 'compute' in r and 'workdir' in r}
    seconds = sum(c['train_seconds'] + c['eval_seconds'] for c in compute.values())
    devices = sorted({c['device'] for c in compute.values()})
    resumed = any(c.get('resumed_from_step', 0) for c in compute.values())
    rows.append(dict(zip(keys, group_key), num_seeds=len(rs),
                 seconds=seconds if compute else None, device=', '.join(devices) or None,
                     resumed=resumed,
                     seeds=sorted(r.get('seed', 0) for r in rs),
                     in_mean=in_mean, in_std=in_std, out_mean=out_mean, out_std=out_std,
                     metric=metric, curve_metric=along, curve=curve))
  return rows


def metric_names(rows: Iterable[dict[str, Any]]) -> str:
  """The score metrics of aggregated ``rows`` in words: ``exact match``, ``token accuracy``
  or both (``exact match / token accuracy``)."""
  return ' / '.join(sorted({r.get('metric', 'exact_match').replace('_', ' ') for r in rows}))


_COLUMNS = ('task', 'options', 'positional', 'positional_options', 'positions',
            'positions_options', 'normalizer', 'model', 'num_seeds',
            'in_mean', 'in_std', 'out_mean', 'out_std', 'seconds', 'device')


def table_csv(rows: Sequence[dict[str, Any]]) -> str:
  """CSV text, one line per aggregated row."""
  buf = io.StringIO()
  w = csv.writer(buf, lineterminator='\n')
  w.writerow(_COLUMNS)
  for r in rows:
    w.writerow([f'{r[c]:.4f}' if isinstance(r[c], float) else r[c] for c in _COLUMNS])
  return buf.getvalue()


def table_markdown(rows: Sequence[dict[str, Any]]) -> str:
  """Markdown table: in/out-of-distribution exact match as mean ± std over seeds."""
  lines = ['| task | positional | positions | normalizer | model | seeds | in-dist | out-of-dist '
           '| compute |', '|---|---|---|---|---|---|---|---|---|']
  for r in sorted(rows, key=lambda r: (task_label(r), -r['out_mean'])):
    cost = ('n/a' if r.get('seconds') is None
            else f"{r['seconds']:.0f} s on {r['device']}"
            + (" (a resumed run: its part after the restart)" if r.get('resumed') else ""))
    lines.append(f"| {task_label(r)} | {encoding_label(r)} | {positions_label(r)} | "
                 f"{r['normalizer']} | "
                 f"{r['model']} | "
                 f"{r['num_seeds']} | {r['in_mean']:.3f} ± {r['in_std']:.3f} | "
                 f"{r['out_mean']:.3f} ± {r['out_std']:.3f} | {cost} |")
  return '\n'.join(lines) + '\n'


def task_label(row: dict[str, Any]) -> str:
  """``copy`` or, with task options, ``copy[variant=replace]``."""
  options = row.get('options', '')
  return f"{row['task']}[{options}]" if options else row['task']


def leaderboard(rows: Sequence[dict[str, Any]], metric: str = 'out_mean'
                ) -> dict[str, list[dict[str, Any]]]:
  """Per task (``task_label``), the aggregated rows ranked by ``metric`` (best first), each
  with its ``rank`` (1 = best; ties share a rank). ``rows`` come from ``aggregate_over_seeds``.
  """
  if rows and metric not in rows[0]:
    raise ValueError(f'unknown metric {metric!r}; valid: in_mean, out_mean')
  board: dict[str, list[dict[str, Any]]] = {}
  for r in rows:
    board.setdefault(task_label(r), []).append(r)
  for task, rs in board.items():
    rs.sort(key=lambda r: -r[metric])
    ranked = []
    for i, r in enumerate(rs):
      tied = ranked and ranked[-1][metric] == r[metric]
      ranked.append(dict(r, rank=ranked[-1]['rank'] if tied else i + 1))
    board[task] = ranked
  return dict(sorted(board.items()))


def leaderboard_markdown(board: dict[str, list[dict[str, Any]]]) -> str:
  """One table: per task, the encodings in rank order with out-of-distribution mean ± std."""
  lines = ['| task | rank | positional | positions | normalizer | seeds | out-of-dist | in-dist |',
           '|---|---|---|---|---|---|---|---|']
  for task, rs in board.items():
    for r in rs:
      lines.append(f"| {task} | {r['rank']} | {encoding_label(r)} | {positions_label(r)} | "
                   f"{r['normalizer']} | {r['num_seeds']} | {r['out_mean']:.3f} ± "
                   f"{r['out_std']:.3f} | {r['in_mean']:.3f} ± {r['in_std']:.3f} |")
  return '\n'.join(lines) + '\n'


def _with_options(name: str, options: str) -> str:
  return f'{name}[{options}]' if options else name


def encoding_label(row: dict[str, Any]) -> str:
  """``rope`` or, with encoding options, ``relative[random_distances=2048]``."""
  return _with_options(row['positional'], row.get('positional_options', ''))


def positions_label(row: dict[str, Any]) -> str:
  """``default`` or, with sampler options, ``offset[max_offset=300]``."""
  return _with_options(row.get('positions', 'default'), row.get('positions_options', ''))


def method_label(row: dict[str, Any]) -> str:
  """``rope``, or with a non-default sampler / normalizer ``rope/randomized/ssmax``; options
  of the encoding or the sampler in brackets (``relative[random_distances=2048]``)."""
  parts = [encoding_label(row)]
  if row.get('positions', 'default') != 'default' or row.get('positions_options'):
    parts.append(positions_label(row))
  if row.get('normalizer', 'softmax') != 'softmax':
    parts.append(row['normalizer'])
  return '/'.join(parts)


def mean_reciprocal_rank(board: dict[str, list[dict[str, Any]]],
                         methods: Sequence[str] | None = None) -> list[dict[str, Any]]:
  """Per method (``method_label``), the mean over tasks of 1 / its rank among ``methods``.

  The score of Kazemnejad et al.'s Figure 1. ``methods`` (default: every method of the
  board) are ranked among themselves on each task where all of them were run (a method
  missing from a task would otherwise gain or lose by its absence); ties share a rank. Returns
  ``method``, ``mrr`` and ``num_tasks`` per method, best first.
  """
  every = {method_label(r) for rs in board.values() for r in rs}
  wanted = set(methods) if methods is not None else every
  if not wanted <= every:
    raise ValueError(f'methods {sorted(wanted - every)} are not on the leaderboard; '
                     f'valid: {", ".join(sorted(every))}')
  recip: dict[str, list[float]] = {m: [] for m in wanted}
  for rs in board.values():
    scores = {method_label(r): r['out_mean'] for r in rs if method_label(r) in wanted}
    if set(scores) != wanted:
      continue
    for m, score in scores.items():
      recip[m].append(1.0 / (1 + sum(other > score for other in scores.values())))
  if not any(recip.values()):
    raise ValueError(f'no task of the leaderboard has every method of {sorted(wanted)}; '
                     f'tasks: {", ".join(board)}')
  out = [{'method': m, 'mrr': sum(v) / len(v), 'num_tasks': len(v)} for m, v in recip.items()]
  return sorted(out, key=lambda r: (-r['mrr'], r['method']))


def mrr_markdown(mrr: Sequence[dict[str, Any]]) -> str:
  """The ``mean_reciprocal_rank`` rows as a markdown table."""
  lines = ['| method | mean reciprocal rank | tasks |', '|---|---|---|']
  lines += [f"| {r['method']} | {r['mrr']:.3f} | {r['num_tasks']} |" for r in mrr]
  return '\n'.join(lines) + '\n'


class TrainedRun:
  """A workdir's newest checkpoint, ready to run: ``config``, ``setup`` (its task mixture and
  model), ``task`` and ``model`` (shortcuts), ``params`` (of seed ``seed_index`` when the run
  trained several) and ``step``. Works for every workdir: single tasks, hints, seeds."""

  def __init__(self, workdir: str, seed_index: int = 0):
    import jax  # pylint: disable=import-outside-toplevel  (reading tables needs no jax)
    from lengthgen import workdir as workdir_lib  # pylint: disable=import-outside-toplevel
    self.workdir = workdir
    self.config, self.setup, self.step, state = workdir_lib.restore(workdir, what='TrainedRun')
    self.task, self.model = self.setup.task, self.setup.model
    num_seeds = self.config.train.num_seeds
    if not 0 <= seed_index < num_seeds:
      raise ValueError(f'seed_index {seed_index} is out of range: {workdir} trained '
                       f'{num_seeds} seed(s), valid indices 0..{num_seeds - 1}')
    params = state['params']
    if num_seeds > 1:
      params = jax.tree.map(lambda x: x[seed_index], params)
    self.seed = self.config.train.seed + seed_index
    self.params = params

  def attention_maps(self, length: int, *, num_examples: int = 1, example_seed: int = 0,
                     task_index: int = 0) -> dict[str, Any]:
    """The attention weights on fresh examples of one length of one task of the run.

    Returns ``weights`` [L, B, H, T, T] (float32 numpy; query rows, key columns), ``tokens``
    [B, T] ids, ``labels`` (the vocabulary strings of example 0), ``lengths`` [B] (tokens per
    example; the arrays are padded to the longest) and ``train_max_length``.
    """
    import jax  # pylint: disable=import-outside-toplevel
    import numpy as np  # pylint: disable=import-outside-toplevel
    from lengthgen import data  # pylint: disable=import-outside-toplevel
    rng = np.random.default_rng([example_seed, length])
    batch = self.setup.tasks[task_index].eval_task.sample(rng, num_examples, length)
    inputs = data.mixture_inputs(self.setup, [(task_index, batch)], rng, train=False)
    _, weights = self.model.apply({'params': self.params}, inputs['tokens'],
                                  inputs['positions'], lengths=inputs['lengths'],
                                  task_ids_B=inputs['task_ids'], train=False,
                                  return_attention=True,
                                  rngs={'dropout': jax.random.key(int(rng.integers(2**31 - 1)))})
    tokens = inputs['tokens']
    n0 = int(inputs['lengths'][0])
    return {'weights': np.asarray(weights, np.float32), 'tokens': tokens,
            'labels': [self.setup.vocab[int(i)] for i in tokens[0, :n0]],
            'lengths': inputs['lengths'], 'train_max_length': self.config.train.max_length}


def plot_attention(maps: dict[str, Any], *, layers: Sequence[int] | None = None,
                   heads: Sequence[int] | None = None, example: int = 0, title: str = ''):
  """A grid of attention maps (rows: layers, columns: heads) of one example; returns the
  matplotlib figure. Tick labels are the tokens when there are at most 40."""
  extras.require('matplotlib', 'analysis.plot_attention')
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel  (sets a backend)
  w = maps['weights']
  layers = list(range(w.shape[0])) if layers is None else list(layers)
  heads = list(range(w.shape[2])) if heads is None else list(heads)
  n = int(maps['lengths'][example])
  fig, axes = plt.subplots(len(layers), len(heads), squeeze=False,
                           figsize=(2.6 * len(heads), 2.6 * len(layers)))
  for i, layer in enumerate(layers):
    for j, head in enumerate(heads):
      ax = axes[i][j]
      ax.imshow(w[layer, example, head, :n, :n], cmap='viridis', vmin=0.0)
      ax.set_title(f'layer {layer} head {head}', fontsize=8)
      if n <= 40 and example == 0:
        ax.set_xticks(range(n), maps['labels'], rotation=90, fontsize=5)
        ax.set_yticks(range(n), maps['labels'], fontsize=5)
      else:
        ax.set_xticks([])
        ax.set_yticks([])
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  return fig
