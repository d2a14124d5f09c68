"""The leaderboard across sweeps: mean reciprocal rank, heat map, scripts/leaderboard.py."""

import json
import os
import subprocess
import sys

import pytest

from lengthgen import analysis, plotting
from conftest import ROOT


def _row(task, positional, out, inn=1.0, normalizer='softmax', positions='default'):
  return {'task': task, 'options': '', 'positional': positional, 'positions': positions,
          'normalizer': normalizer, 'num_seeds': 3, 'out_mean': out, 'out_std': 0.0,
          'in_mean': inn, 'in_std': 0.0}


def _board():
  return analysis.leaderboard([
      _row('copy', 'nope', 0.9), _row('copy', 'rope', 0.1), _row('copy', 't5', 0.5),
      _row('sort', 'nope', 0.2), _row('sort', 'rope', 0.2), _row('sort', 't5', 0.7),
      _row('parity', 'nope', 0.6, inn=0.5)])  # rope and t5 not run on parity


def test_mean_reciprocal_rank_counts_only_tasks_with_every_method():
  mrr = analysis.mean_reciprocal_rank(_board())
  # copy: nope 1, t5 2, rope 3; sort: t5 1, nope and rope tied at 2; parity lacks rope, t5.
  assert [(r['method'], r['num_tasks']) for r in mrr] == [('nope', 2), ('t5', 2), ('rope', 2)]  # ties by name
  assert [r['mrr'] for r in mrr] == pytest.approx([0.75, 0.75, (1 / 3 + 1 / 2) / 2])


def test_mean_reciprocal_rank_ranks_a_subset_among_itself():
  mrr = {r['method']: r for r in analysis.mean_reciprocal_rank(_board(), ['nope', 'rope'])}
  assert mrr['nope']['mrr'] == pytest.approx(1.0)  # copy 1; sort tied 1
  assert mrr['rope']['mrr'] == pytest.approx(0.75)  # copy 2; sort tied 1
  assert mrr['nope']['num_tasks'] == 2
  with pytest.raises(ValueError, match=r"\['alibi'\] are not on the leaderboard; valid: nope"):
    analysis.mean_reciprocal_rank(_board(), ['nope', 'alibi'])


def test_method_label_names_sampler_and_normalizer():
  assert analysis.method_label(_row('copy', 'rope', 0.0)) == 'rope'
  assert analysis.method_label(_row('copy', 'rope', 0.0, normalizer='ssmax',
                                    positions='randomized')) == 'rope/randomized/ssmax'


def test_plot_leaderboard_marks_unfitted_cells(tmp_path):
  ax = plotting.plot_leaderboard(_board(), str(tmp_path / 'lb.png'))
  texts = [t.get_text() for t in ax.texts]
  assert '0.60\n#1\nnot fit' in texts and '0.90\n#1' in texts
  assert len(texts) == 7  # blank cells for the methods not run
  assert (tmp_path / 'lb.png').stat().st_size > 0


def test_leaderboard_script_writes_table_and_figure(tmp_path):
  sweep = tmp_path / 'a_cpu'
  for name, positional, out in [('copy_nope_softmax_s0', 'nope', 0.9),
                                ('copy_rope_softmax_s0', 'rope', 0.1)]:
    wd = sweep / name
    wd.mkdir(parents=True)
    (wd / 'results.json').write_text(json.dumps({
        'task': 'copy', 'positional': positional, 'positions': 'default',
        'normalizer': 'softmax', 'model': 'decoder', 'seed': 0, 'train_lengths': [1, 2],
        'eval': [{'length': 3, 'exact_match': out, 'token_accuracy': out, 'num_examples': 8}],
        'score': {'in_distribution': 1.0, 'out_of_distribution': out}}))
  out = tmp_path / 'board'
  proc = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'leaderboard.py'),
                         f'--sweeps={tmp_path}/*_cpu', f'--out={out}'],
                        capture_output=True, text=True, check=False)
  assert proc.returncode == 0, proc.stderr
  md = (tmp_path / 'board.md').read_text()
  assert '| copy | 1 | nope |' in md and '| copy | 2 | rope |' in md
  assert '| nope | 1.000 | 1 |' in md
  assert (tmp_path / 'board.png').stat().st_size > 0
