"""Executes each notebook in notebooks/ on a hand-made sweep directory (reads files only)."""

import json
import os

import pytest

from conftest import ROOT, tiny_config

nbformat = pytest.importorskip('nbformat')
nbclient = pytest.importorskip('nbclient')

pytestmark = pytest.mark.integration  # each test starts a Jupyter kernel


def _make_sweep(d):
  for enc, seed in (('nope', 0), ('nope', 1), ('rope', 0)):
    wd = os.path.join(d, f'copy_{enc}_softmax_s{seed}')
    os.makedirs(wd)
    res = {'task': 'copy', 'positional': enc, 'normalizer': 'softmax', 'model': 'decoder',
           'train_lengths': [1, 4], 'steps': 10, 'seed': seed,
           'eval': [{'length': n, 'exact_match': 1.0 / n, 'token_accuracy': 1.0, 'num_examples': 8}
                    for n in (2, 4, 8)],
           'score': {'in_distribution': 0.5, 'out_of_distribution': 0.125}}
    with open(os.path.join(wd, 'results.json'), 'w') as f:
      json.dump(res, f)


def _execute(name, monkeypatch, **env):
  """Runs notebooks/<name>.ipynb with these environment variables; returns its text output."""
  for k, v in env.items():
    monkeypatch.setenv(k, v)
  monkeypatch.setenv('PYTHONPATH', ROOT)
  monkeypatch.setenv('JAX_PLATFORMS', 'cpu')
  nb = nbformat.read(os.path.join(ROOT, 'notebooks', f'{name}.ipynb'), as_version=4)
  nbclient.NotebookClient(nb, timeout=120, kernel_name='python3',
                          resources={'metadata': {'path': ROOT}}).execute()
  images = sum('image/png' in o.get('data', {}) for c in nb.cells for o in c.get('outputs', []))
  return ''.join(o.get('text', '') for c in nb.cells for o in c.get('outputs', [])), images


def test_accuracy_vs_length_notebook(tmp_path, monkeypatch):
  _make_sweep(str(tmp_path))
  out, images = _execute('accuracy_vs_length', monkeypatch, LENGTHGEN_SWEEP=str(tmp_path))
  assert '| copy | nope |' in out and images == 1


def test_leaderboard_notebook(tmp_path, monkeypatch):
  _make_sweep(str(tmp_path / 'a_cpu'))
  _make_sweep(str(tmp_path / 'b_cpu'))  # a second sweep: its seeds join the same grid points
  out, images = _execute('leaderboard', monkeypatch, LENGTHGEN_SWEEPS=str(tmp_path / '*_cpu'))
  assert '2 sweep directories, 6 runs' in out
  assert '| copy | 1 | nope | default | softmax | 4 | 0.125 ± 0.000 |' in out and images == 1


def test_attention_maps_notebook(tmp_path, monkeypatch):
  from lengthgen import train  # pylint: disable=g-import-not-at-top
  wd = str(tmp_path / 'run')
  train.train_and_evaluate(tiny_config(), wd, verbose=False)
  out, images = _execute('attention_maps', monkeypatch, LENGTHGEN_WORKDIR=wd)
  assert 'checkpoint step 12' in out and 'length 12:' in out and images == 2
