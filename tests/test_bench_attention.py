"""scripts/bench_attention.py: exact visible-pair FLOPs, the f32 row reference, the smoke run."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT, load_file

from lengthgen.attention import AlibiBias, reference
from lengthgen.attention.masks import make_mask

bench = load_file("scripts/bench_attention.py", "bench_attention")


def _brute(t, s, **mask):
  return np.asarray(make_mask(t, s, **mask)).sum(axis=(1, 2, 3))


@pytest.mark.parametrize("t,s", [(1, 1), (7, 7), (13, 13), (5, 12), (12, 5)])
def test_visible_pairs_equals_the_mask(t, s):
  cases = [dict(window=None, global_tokens=0)] + [
      dict(window=w, global_tokens=g) for w, g in itertools.product((1, 3, 6, 20), (0, 1, 4, 9))]
  for causal, case in itertools.product((True, False), cases):
    mask = dict(causal=causal, **case)
    assert bench.visible_pairs(t, s, **mask) == _brute(t, s, **mask)[0], mask
    lengths = np.array([0, 1, s // 2, s])
    np.testing.assert_array_equal(bench.visible_pairs(t, s, lengths=lengths, **mask),
                                  _brute(t, s, lengths=jnp.asarray(lengths), **mask),
                                  err_msg=str(mask))
    assert bench.visible_pairs(t, s, q_start=2, **mask) == _brute(t, s, q_start=2, **mask)[0]


def test_visible_pairs_issue_lambda_fraction_and_flops():
  t = 16384
  t0 = time.perf_counter()
  pairs = bench.visible_pairs(t, t, causal=True, window=4096, global_tokens=10)
  causal = bench.visible_pairs(t, t, causal=True)
  assert causal == t * (t + 1) // 2
  assert pairs / causal == pytest.approx(0.438, abs=5e-4)       # the issue's 43.8%
  assert causal / pairs == pytest.approx(2.28, abs=5e-3)        # its 2.28x overstatement
  # The closed form: rows i < 4096 see i + 1 keys, the others the window and the globals
  # beyond it (rows 4096..4104 overlap the globals by 4105 - i keys).
  w, g = 4096, 10
  closed = w * (w + 1) // 2 + sum(w + min(g, i - w + 1) for i in range(w, t))
  assert pairs == closed
  bench.visible_pairs(32768, 32768, causal=True, window=4096, global_tokens=10)
  assert time.perf_counter() - t0 < 1.0  # O(T), no T x T mask
  options = dict(causal=True, window=4096, global_tokens=10)
  assert bench.forward_flops((1, 16, t, 128), options) == 4 * 16 * 128 * pairs
  assert bench.forward_flops((2, 3, 8, 4), dict(causal=False)) == 4 * 2 * 3 * 4 * 64


def test_reference_on_rows_equals_the_full_reference():
  """Sampled-row output and gradients equal the full reference's rows and gradients."""
  b, h, t, d = 2, 2, 24, 8
  rng = np.random.default_rng(0)
  q, k, v = [jnp.asarray(rng.normal(size=(b, t, h, d)), jnp.float32) for _ in range(3)]
  options = dict(causal=True, window=5, global_tokens=2,
                 bias=AlibiBias(jnp.asarray([0.5, 0.25])))
  blocks = bench.sample_blocks(t, 12, block=4)
  assert blocks == [(0, 4), (10, 4), (20, 4)]
  g = bench.row_cotangent((b, h, t, d), blocks)
  rows = np.concatenate([np.arange(s0, s0 + n) for s0, n in blocks])
  assert np.all(np.asarray(g)[:, np.setdiff1d(np.arange(t), rows)] == 0)
  got_rows, got_grads = bench.reference_on_rows(q, k, v, g, blocks, options)
  full = lambda q, k, v: jnp.sum(reference.attention(q, k, v, **options) * g)  # noqa: E731
  want_grads = jax.grad(full, argnums=(0, 1, 2))(q, k, v)
  want_rows = reference.attention(q, k, v, **options)[:, rows]
  np.testing.assert_allclose(got_rows, want_rows, atol=1e-6)
  for got, want in zip(got_grads, want_grads):
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_error_columns_catch_a_wrong_implementation(monkeypatch):
  """An implementation that drops the mask gets large output and gradient errors."""
  real = bench.implementation

  def wrong(impl, options, shape, dtype, interpret):
    if impl == "xla":
      unmasked = {**options, "causal": False, "window": None, "global_tokens": 0}
      return (lambda q, k, v: reference.attention(q, k, v, **unmasked)), (), "no mask"
    return real(impl, options, shape, dtype, interpret)

  b = bench.Bench(jnp.float32, iters=1, error_rows=16, smoke=True, min_rep_s=0.0)
  good, _ = b.measure((1, 2, 16, 8), "lambda_mask", "xla")
  monkeypatch.setattr(bench, "implementation", wrong)
  bad, _ = b.measure((1, 2, 16, 8), "lambda_mask", "xla")
  for name in ("out", "dq", "dk", "dv"):
    assert good[f"{name}_rel_err_vs_f32"] < 1e-5
    assert bad[f"{name}_rel_err_vs_f32"] > 0.05, name


def _check_outputs(out, md, implementations):
  data = json.loads(out.read_text())
  rows = data["results"]
  assert "4*B*H*D*visible_pairs" in data["meta"]["flops"]
  assert data["meta"]["fwd_bwd_factor"] == 3.5
  assert {r["implementation"] for r in rows} == set(implementations)
  for r in rows:
    assert "error" not in r, r
    options = bench.variants(r["shape"][1], True)[r["variant"]][0]
    assert r["fwd_flops"] == bench.forward_flops(tuple(r["shape"]), options)
    assert r["fwd_bwd_flops"] == 3.5 * r["fwd_flops"]
    for name in ("out", "dq", "dk", "dv"):
      assert r[f"{name}_max_abs_err_vs_f32"] < 1e-4, (r, name)
  lam = [r for r in rows if r["variant"] == "lambda_mask"]
  assert lam and all(r["visible_fraction"] < 0.5 for r in lam)
  text = md.read_text()
  assert text.count("\n| 1,2,") == len(rows) and "out rel err" in text
  return rows


def test_smoke_xla_in_process(tmp_path):
  """The driver end to end, in process, for the XLA implementation (fast)."""
  out, md = tmp_path / "b.json", tmp_path / "b.md"
  bench.main(["--smoke", "--implementations=xla", "--variants=lambda_mask", f"--out={out}",
              f"--markdown={md}"])
  rows = _check_outputs(out, md, ["xla"])
  assert [r["shape"] for r in rows] == [[1, 2, 40, 16]]  # the long shape has no XLA row


@pytest.mark.slow
def test_smoke_whole_driver(tmp_path):
  """``--smoke`` as a command: every variant, ours in interpret mode and XLA (~60 s)."""
  out = tmp_path / "bench.json"
  proc = subprocess.run([sys.executable, str(ROOT) + "/scripts/bench_attention.py", "--smoke",
                         f"--out={out}"], cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-2000:]
  rows = _check_outputs(out, out.with_suffix(".md"), ["ours", "xla"])
  assert len(rows) == 10
  assert {r["variant"] for r in rows} == set(bench.variants(2, True))
  skipped = json.loads(out.read_text())["skipped"]
  assert {s["implementation"] for s in skipped} <= {"cudnn", "tokamax"}


def test_gpu_plan_covers_the_issue_table_headline_first():
  todo = bench.plan(smoke=False)
  assert todo[0] == ((4, 16, 4096, 64), "causal_softmax", "cudnn")
  for shape in [(4, 16, 4096, 64), (4, 16, 4096, 128), (1, 16, 16384, 128)]:
    for variant in bench.variants(16, False):
      assert (shape, variant, "ours") in todo
  long = [p for p in todo if p[0] == (1, 16, 32768, 128)]
  assert {(v, i) for _, v, i in long} >= {("lambda_mask", "ours"), ("causal_softmax", "ours")}
  assert max(todo.index(p) for p in long) < todo.index(
      ((4, 16, 4096, 64), "causal_alibi", "ours"))
  assert ((4, 16, 4096, 128), "causal_softmax", "ours_b128") not in todo  # shared memory
  assert len(set(todo)) == len(todo)


def test_deadline_lists_rows_not_run(tmp_path):
  out = tmp_path / "b.json"
  bench.main(["--smoke", "--implementations=xla", "--deadline_s=0", f"--out={out}"])
  data = json.loads(out.read_text())
  assert data["results"] == []
  assert len(data["skipped"]) == len(bench.plan(True, ("xla",)))
  assert all(s["why"].startswith("deadline") for s in data["skipped"])
