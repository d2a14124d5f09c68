"""Tests for lengthgen.analysis (aggregation over seeds on hand-made results.json files) and
the sweep command (lengthgen.sweeps.cli, scripts/sweep.py)."""

import json
import os

import chex
import jax
import numpy as np
import pytest

from conftest import ROOT
from lengthgen import analysis, build, data, evaluate, train, workdir
from lengthgen.sweeps import cli, grid, report


def _write(d, name, seed, positional, in_d, out_d, curve, *, token_accuracy=None,
           metric=None):
  """A finished point's results.json; token accuracy equals exact match at every length
  unless ``token_accuracy`` (one value per length of ``curve``) is given, and the score
  records ``metric`` when given."""
  wd = os.path.join(d, name)
  os.makedirs(wd)
  tokens = token_accuracy or [a for _, a in curve]
  res = {'task': 'copy', 'positional': positional, 'normalizer': 'softmax', 'model': 'decoder',
         'train_lengths': [1, 4], 'steps': 10, 'seed': seed,
         'eval': [{'length': n, 'exact_match': a, 'token_accuracy': t, 'num_examples': 8}
                  for (n, a), t in zip(curve, tokens)],
         'score': {'in_distribution': in_d, 'out_of_distribution': out_d}}
  if metric is not None:
    res['score']['metric'] = metric
  with open(os.path.join(wd, 'results.json'), 'w') as f:
    json.dump(res, f)


def test_aggregate_mean_std(tmp_path):
  d = str(tmp_path)
  _write(d, 'nope_s0', 0, 'nope', 1.0, 0.2, [(4, 1.0), (8, 0.2)])
  _write(d, 'nope_s1', 1, 'nope', 0.5, 0.6, [(4, 0.5), (8, 0.6)])
  _write(d, 'rope_s0', 0, 'rope', 0.9, 0.0, [(4, 0.9), (8, 0.0)])
  os.makedirs(os.path.join(d, 'unfinished'))  # no results.json: ignored
  rows = {r['positional']: r for r in analysis.aggregate_over_seeds(analysis.load_sweep(d))}
  assert set(rows) == {'nope', 'rope'}
  nope = rows['nope']
  assert nope['num_seeds'] == 2 and nope['seeds'] == [0, 1]
  np.testing.assert_allclose([nope['in_mean'], nope['in_std']], [np.mean([1.0, 0.5]), np.std([1.0, 0.5])])
  np.testing.assert_allclose([nope['out_mean'], nope['out_std']], [0.4, 0.2])
  np.testing.assert_allclose(np.array(nope['curve']), [[4, 0.75, 0.25], [8, 0.4, 0.2]])
  assert rows['rope']['out_std'] == 0.0
  md = analysis.table_markdown(list(rows.values()))
  assert '0.400 ± 0.200' in md
  csv_text = analysis.table_csv(list(rows.values())).splitlines()
  assert len(csv_text) == 3 and csv_text[0].startswith('task,options,positional')


def test_curve_follows_the_score_metric(tmp_path):
  """A run scored by token accuracy (as the Chomsky protocol is) gets a token-accuracy curve;
  the report's figure and leaderboard name that metric."""
  d = str(tmp_path)
  for seed, tok in enumerate([0.6, 0.8]):
    _write(d, f'rope_s{seed}', seed, 'rope', 1.0, tok, [(50, 0.0)], token_accuracy=[tok],
           metric='token_accuracy')
  rows = analysis.aggregate_over_seeds(analysis.load_sweep(d))
  assert rows[0]['metric'] == 'token_accuracy'
  np.testing.assert_allclose(np.array(rows[0]['curve']), [[50, 0.7, 0.1]])
  report.summarize(d)
  with open(os.path.join(d, 'leaderboard.md')) as f:
    assert 'Ranked per task by token accuracy beyond training' in f.read()
  # the seeds of one grid point scored by different metrics cannot be averaged
  _write(d, 'rope_s2', 2, 'rope', 1.0, 0.0, [(50, 0.0)], metric='exact_match')
  with pytest.raises(ValueError, match='different metrics: exact_match, token_accuracy'):
    analysis.aggregate_over_seeds(analysis.load_sweep(d))


def test_token_accuracy_curves_of_exact_match_runs(tmp_path):
  """``curve_metric='token_accuracy'`` gives token-accuracy curves of runs scored by exact
  match, and the report draws them in a second figure; a length without the metric raises."""
  d = str(tmp_path)
  for seed, tok in enumerate([0.6, 0.8]):
    _write(d, f'nope_s{seed}', seed, 'nope', 1.0, 0.0, [(4, 1.0), (8, 0.0)],
           token_accuracy=[1.0, tok])
  [row] = analysis.aggregate_over_seeds(analysis.load_sweep(d), curve_metric='token_accuracy')
  assert row['metric'] == 'exact_match' and row['curve_metric'] == 'token_accuracy'
  np.testing.assert_allclose(np.array(row['curve']), [[4, 1.0, 0.0], [8, 0.7, 0.1]])
  [plain] = analysis.aggregate_over_seeds(analysis.load_sweep(d))
  np.testing.assert_allclose(np.array(plain['curve']), [[4, 1.0, 0.0], [8, 0.0, 0.0]])
  report.summarize(d)
  for f in ('accuracy_vs_length_copy.png', 'token_accuracy_vs_length_copy.png'):
    assert os.path.getsize(os.path.join(d, f)) > 0
  with pytest.raises(ValueError, match=r"curve metric 'loss' is not recorded at lengths "
                     r"\[4, 8\].*recorded: exact_match, num_examples, token_accuracy"):
    analysis.aggregate_over_seeds(analysis.load_sweep(d), curve_metric='loss')


def test_summary_marks_the_compute_of_a_resumed_run(tmp_path):
  d = str(tmp_path)
  for seed, resumed in enumerate([0, 350]):
    _write(d, f'nope_s{seed}', seed, 'nope', 1.0, 0.0, [(4, 1.0), (8, 0.0)])
    path = os.path.join(d, f'nope_s{seed}', 'results.json')
    res = json.load(open(path))
    res['compute'] = {'train_seconds': 10.0, 'eval_seconds': 1.0, 'device': 'cpu',
                      'resumed_from_step': resumed}
    json.dump(res, open(path, 'w'))
  [row] = analysis.aggregate_over_seeds(analysis.load_sweep(d))
  assert row['resumed'] and row['seconds'] == 22.0
  assert '22 s on cpu (a resumed run: its part after the restart)' in analysis.table_markdown([row])
  os.remove(os.path.join(d, 'nope_s1', 'results.json'))
  [row] = analysis.aggregate_over_seeds(analysis.load_sweep(d))
  assert not row['resumed'] and '| 11 s on cpu |' in analysis.table_markdown([row])


def test_encoding_options_tell_variants_of_one_encoding_apart(tmp_path):
  """Plain and randomized relative (``positional_options``) are two methods, not one averaged
  group; their labels name the options."""
  d = str(tmp_path)
  for name, options, out in [('plain', {}, 0.5), ('randomized', {'random_distances': 2048}, 0.9)]:
    _write(d, name, 3, 'relative', 1.0, out, [(4, 1.0), (8, out)])
    with open(os.path.join(d, name, 'config.json'), 'w') as f:
      json.dump({'task_options': {}, 'model': {'positional_options': options,
                                               'positions_options': {}}}, f)
  rows = analysis.aggregate_over_seeds(analysis.load_sweep(d))
  assert sorted((analysis.method_label(r), r['out_mean']) for r in rows) == [
      ('relative', 0.5), ('relative[random_distances=2048]', 0.9)]
  assert '| relative[random_distances=2048] | default |' in analysis.table_markdown(rows)
  assert 'relative,random_distances=2048,default,,softmax' in analysis.table_csv(rows)
  board = analysis.leaderboard(rows)
  assert [analysis.method_label(r) for r in board['copy']] == [
      'relative[random_distances=2048]', 'relative']


def test_missing_key_and_dir_raise(tmp_path):
  with pytest.raises(ValueError, match='does not exist'):
    analysis.load_sweep(str(tmp_path / 'nope'))
  with pytest.raises(ValueError, match='missing keys'):
    analysis.aggregate_over_seeds([{'task': 'copy'}])


def _finished_grid(d, config='experiments/configs/demo.py:tiny'):
  """Fake finished points of a nope/rope x 2-seed grid, each with the config.json it trains."""
  for name, overrides in grid.grid_points(['nope', 'rope'], ['softmax'], ['copy'], [0, 1]):
    enc, seed = name.split('_')[1], int(name[-1])
    _write(d, name, seed, enc, 1.0, 0.1 * seed, [(4, 1.0), (8, 0.1 * seed)])
    with open(os.path.join(d, name, 'config.json'), 'w') as f:
      json.dump(grid.resolved_config(config, overrides), f)


def test_sweep_skips_finished_and_summarizes(tmp_path, caplog):
  d = str(tmp_path)
  _finished_grid(d)  # configs resolved from the file's path; the sweep names it
  with caplog.at_level('INFO'):
    cli.main(['--config=demo:tiny', f'--dir={d}', '--encodings=nope,rope', '--seeds=0,1'])
  assert caplog.text.count('skip ') == 4
  # demo.py's task options name the figure: copy[alphabet_size=16]
  for f in ('summary.md', 'summary.csv', 'accuracy_vs_length_copy_alphabet_size-16.png'):
    assert os.path.getsize(os.path.join(d, f)) > 0
  assert '0.050 ± 0.050' in open(os.path.join(d, 'summary.md')).read()
  assert not [f for f in os.listdir(d) if '.tmp' in f]


def test_sweep_reports_a_finished_point_with_another_config(tmp_path):
  d = str(tmp_path)
  _finished_grid(d)
  with pytest.raises(SystemExit, match=r"(?s)4 finished grid point\(s\) hold a different "
                     r"config.*nothing was trained.*--new_run_changed.*copy_nope_softmax_s0:"
                     r"\n  model.num_layers: 1 \(in workdir\) -> 4 \(now\)\n  train.steps: "
                     r"10 \(in workdir\) -> 400 \(now\)"):
    cli.main(['--config=experiments/configs/demo.py:tiny', f'--dir={d}',
                '--encodings=nope,rope', '--seeds=0,1', '--set=train.steps=400',
                '--set=model.num_layers=4'])
  assert not os.path.exists(os.path.join(d, 'copy_nope_softmax_s0', 'checkpoints'))


@pytest.mark.integration
# SIGTERM is slow: the default run has SIGKILL here and SIGTERM of the driver in
# test_sweep_engines.py.
@pytest.mark.parametrize('how', [pytest.param('SIGTERM', marks=pytest.mark.slow), 'SIGKILL'])
def test_interrupted_sweep_stops_its_trainers(tmp_path, how):
  import signal  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  sweep = subprocess.Popen(
      [sys.executable, 'scripts/sweep.py', '--config=demo:tiny',
       f'--dir={tmp_path}', '--encodings=nope,rope', '--parallel=2',
       '--set=train.steps=100000', '--set=train.checkpoint_every=100000',
       '--set=train.log_every=1'],
      cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  logs = [tmp_path / 'copy_nope_softmax_s0.log', tmp_path / 'copy_rope_softmax_s0.log']
  deadline = time.time() + 180
  while time.time() < deadline and not all(
      (p.exists() and 'step ' in p.read_text()) for p in logs):
    time.sleep(0.5)
  sweep.send_signal(getattr(signal, how))  # SIGKILL: the trainers die with their parent
  _, err = sweep.communicate(timeout=60)
  if how == 'SIGTERM':
    assert 'interrupted: stopped 2 running trainer(s)' in err
  import fcntl  # pylint: disable=g-import-not-at-top
  for name in ('copy_nope_softmax_s0', 'copy_rope_softmax_s0'):
    deadline = time.time() + 30
    while True:  # no trainer holds its workdir any more
      with open(tmp_path / name / '.lock', 'a+') as f:
        try:
          fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
          break
        except BlockingIOError:
          assert time.time() < deadline, f'{name} is still held after the sweep was killed'
      time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.integration
def test_tiny_sweep_end_to_end(tmp_path):
  """2 encodings x 1 x 1 x 2 seeds of demo.py:tiny (~60 s on 2 CPU cores), then a resumed no-op."""
  import time  # pylint: disable=g-import-not-at-top
  args = ['--config=experiments/configs/demo.py:tiny', f'--dir={tmp_path}',
          '--encodings=nope,rope', '--seeds=0,1']
  cli.main(args)
  rows = analysis.aggregate_over_seeds(analysis.load_sweep(str(tmp_path)))
  assert len(rows) == 2 and all(r['num_seeds'] == 2 for r in rows)
  t0 = time.time()
  cli.main(args)
  assert time.time() - t0 < 10


def test_grid_points_vmap_seeds_and_positions():
  points = dict(grid.grid_points(['nope', 'rope'], ['softmax'], ['copy'], [3, 4, 5],
                                  ['default', 'randomized'], vmap_seeds=True))
  assert sorted(points) == ['copy_nope_randomized_softmax_s3x3', 'copy_nope_softmax_s3x3',
                            'copy_rope_randomized_softmax_s3x3', 'copy_rope_softmax_s3x3']
  assert {'--config.train.num_seeds=3', '--config.train.seed=3',
          '--config.model.positions=randomized'} <= set(points['copy_rope_randomized_softmax_s3x3'])
  with pytest.raises(SystemExit):  # vmapped seeds must be consecutive
    cli.main(['--config=experiments/configs/demo.py:tiny', '--dir=/tmp/unused',
                '--seeds=0,2', '--vmap_seeds'])


def test_normalizer_modifiers_become_model_flags_and_labels(tmp_path, tiny):
  [(name, flags)] = grid.grid_points(['rope'], ['ssmax+qk_norm'], ['recall'], [0])
  assert name == 'recall_rope_ssmax+qk_norm_s0'
  assert {'--config.model.normalizer=ssmax', '--config.model.qk_norm=True'} <= set(flags)
  with pytest.raises(ValueError, match='unknown modifier.*valid modifiers.*qk_norm'):
    list(grid.grid_points(['rope'], ['ssmax+qknorm'], ['recall'], [0]))
  config = tiny(model=dict(num_layers=1, width=32, num_heads=2, normalizer='ssmax',
                           qk_norm=True))
  assert evaluate.normalizer_label(config) == 'ssmax+qk_norm'
  assert evaluate.normalizer_label(tiny()) == 'softmax'
  setup = build.setup(config)
  model = setup.model
  inputs = data.training_inputs(setup, 0)
  params = model.init(jax.random.key(0), inputs['tokens'], inputs['positions'])['params']
  attention = params['block_0']['attention']
  assert {'query_norm', 'key_norm'} <= set(attention)
  # QK-norm makes the attention blind to the scale of q and k: a 100x query projection
  # changes nothing.
  scaled = jax.tree_util.tree_map_with_path(
      lambda path, x: x * 100.0 if 'query' in str(path[-2]) and 'norm' not in str(path[-2])
      else x, params)
  run = lambda p: model.apply({'params': p}, inputs['tokens'], inputs['positions'])
  np.testing.assert_allclose(run(scaled), run(params), rtol=1e-4, atol=1e-4)


def test_vmapped_seeds_split_into_per_seed_records(tmp_path):
  wd = tmp_path / 'copy_nope_softmax_s0x2'
  wd.mkdir()
  seeds = [{'seed': s, 'eval': [{'length': 4, 'exact_match': a, 'token_accuracy': a,
                                 'num_examples': 8}],
            'score': {'in_distribution': a, 'out_of_distribution': a / 2}}
           for s, a in ((0, 1.0), (1, 0.5))]
  res = {'task': 'copy', 'positional': 'nope', 'positions': 'default', 'normalizer': 'softmax',
         'model': 'decoder', 'seed': 0, 'num_seeds': 2, 'eval': seeds[0]['eval'],
         'score': seeds[0]['score'], 'seeds': seeds, 'score_over_seeds': {},
         'compute': {'train_seconds': 10.0, 'eval_seconds': 2.0, 'device': 'H100'}}
  (wd / 'results.json').write_text(json.dumps(res))
  records = analysis.load_sweep(str(tmp_path))
  assert [r['seed'] for r in records] == [0, 1]
  [row] = analysis.aggregate_over_seeds(records)
  assert row['num_seeds'] == 2 and row['seconds'] == 12.0 and row['device'] == 'H100'
  np.testing.assert_allclose([row['in_mean'], row['out_mean']], [0.75, 0.375])
  assert '12 s on H100' in analysis.table_markdown([row])


def test_task_options_tell_variants_apart(tmp_path):
  d = str(tmp_path)
  for name, variant, out_d in (('rep_s0', 'repeat', 1.0), ('rep_s1', 'repeat', 0.8),
                               ('repl_s0', 'replace', 0.3)):
    _write(d, name, int(name[-1]), 'nope', 1.0, out_d, [(4, 1.0), (8, out_d)])
    with open(os.path.join(d, name, 'config.json'), 'w') as f:
      json.dump({'task': 'copy', 'task_options': {'variant': variant}}, f)
  rows = analysis.aggregate_over_seeds(analysis.load_sweep(d))
  got = {analysis.task_label(r): (r['num_seeds'], round(r['out_mean'], 6)) for r in rows}
  assert got == {'copy[variant=repeat]': (2, 0.9), 'copy[variant=replace]': (1, 0.3)}
  assert '| copy[variant=replace] | nope |' in analysis.table_markdown(rows)


def test_leaderboard_ranks_per_task_with_ties(tmp_path):
  d = str(tmp_path)
  for name, enc, out_d in (('a', 'nope', 0.5), ('b', 'rope', 0.9), ('c', 'alibi', 0.5),
                           ('d', 't5', 0.1)):
    _write(d, name, 0, enc, 1.0, out_d, [(4, 1.0), (8, out_d)])
  board = analysis.leaderboard(analysis.aggregate_over_seeds(analysis.load_sweep(d)))
  assert list(board) == ['copy']
  assert [(r['positional'], r['rank']) for r in board['copy']] == [
      ('rope', 1), ('nope', 2), ('alibi', 2), ('t5', 4)]
  assert '| copy | 1 | rope | default | softmax | 1 | 0.900 ± 0.000 |' in (
      analysis.leaderboard_markdown(board))
  with pytest.raises(ValueError, match='unknown metric'):
    analysis.leaderboard(analysis.aggregate_over_seeds(analysis.load_sweep(d)), metric='acc')


@pytest.mark.slow  # TrainedRun's restore and attention maps are in the default run through
# test_multitask.py::test_tiny_multitask_run_end_to_end; choosing a vmapped seed only here
@pytest.mark.integration
def test_trained_run_restores_each_seed_and_its_attention(tmp_path, tiny):
  config = tiny(train=dict(num_seeds=2, seed=3))
  wd = str(tmp_path / 'run')
  workdir.prepare_workdir(config, wd)
  _, params = train.train(config, wd)
  for i in range(2):
    run = analysis.TrainedRun(wd, seed_index=i)
    assert (run.step, run.seed) == (12, 3 + i)
    chex.assert_trees_all_equal(run.params, jax.tree.map(lambda x, i=i: x[i], params))
  m = run.attention_maps(9, num_examples=2)
  w = m['weights']
  n = int(m['lengths'][0])
  assert w.shape[:3] == (2, 2, 2) and len(m['labels']) == n and m['train_max_length'] == 6
  np.testing.assert_allclose(w[:, 0, :, :n].sum(-1), 1.0, atol=1e-5)  # softmax rows
  assert np.all(np.triu(w[:, 0, :, :n, :n], k=1) == 0)  # causal decoder: no look-ahead
  with pytest.raises(ValueError, match=r'seed_index 2 is out of range.*valid indices 0\.\.1'):
    analysis.TrainedRun(wd, seed_index=2)
  with pytest.raises(ValueError, match='is not a workdir'):
    analysis.TrainedRun(str(tmp_path))
  empty = str(tmp_path / 'empty')
  workdir.prepare_workdir(tiny(), empty)
  with pytest.raises(ValueError, match='has no usable checkpoint'):
    analysis.TrainedRun(empty)


def test_default_task_is_the_configs_own():
  # Without --tasks the grid trains the config's task (a parity config must not become copy).
  assert grid.config_task(os.path.join(ROOT, 'experiments/configs/parity.py:tiny')) == 'parity'
  assert grid.config_task(os.path.join(ROOT, 'experiments/configs/kazemnejad_copy.py')) == 'copy'
  assert grid.config_task('parity:tiny') == 'parity'  # a config name


def test_unknown_config_stops_the_sweep_before_anything_is_written(tmp_path, capsys):
  with pytest.raises(SystemExit):
    cli.main(['--config=party:tiny', f'--dir={tmp_path / "sweep"}'])
  assert "'party' is not a config name" in capsys.readouterr().err
  assert not (tmp_path / 'sweep').exists()
