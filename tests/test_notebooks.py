"""Executes each notebook in notebooks/ on a hand-made sweep directory (reads files only)."""

import json
import os

import pytest

nbformat = pytest.importorskip('nbformat')
nbclient = pytest.importorskip('nbclient')

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def test_accuracy_vs_length_notebook(tmp_path, monkeypatch):
  _make_sweep(str(tmp_path))
  monkeypatch.setenv('LENGTHGEN_SWEEP', str(tmp_path))
  monkeypatch.setenv('MPLBACKEND', 'Agg')
  monkeypatch.setenv('PYTHONPATH', _ROOT)
  nb = nbformat.read(os.path.join(_ROOT, 'notebooks', 'accuracy_vs_length.ipynb'), as_version=4)
  nbclient.NotebookClient(nb, timeout=60, kernel_name='python3',
                          resources={'metadata': {'path': _ROOT}}).execute()
  out = ''.join(o.get('text', '') for c in nb.cells for o in c.get('outputs', []))
  assert '| copy | nope |' in out
