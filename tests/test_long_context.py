"""Evaluation at 16K tokens completes on a CPU (blockwise attention, shrinking eval batches)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from lengthgen import build, evaluate
from conftest import tiny_config


@pytest.mark.integration
@pytest.mark.parametrize("positional,normalizer,dtype", [
    pytest.param("rope", "softmax", "bfloat16", marks=pytest.mark.slow),
    ("alibi", "softplus_reweight", "float32"),
])
def test_evaluation_at_16k_tokens(positional, normalizer, dtype, monkeypatch):
  from lengthgen.attention import blockwise
  calls = []
  original = blockwise.blockwise_attention
  monkeypatch.setattr(blockwise, "blockwise_attention",
                      lambda *a, **k: calls.append(a[0].shape) or original(*a, **k))
  config = tiny_config(model=dict(num_layers=1, width=16, num_heads=2, positional=positional,
                                  normalizer=normalizer, dtype=dtype),
                       eval=dict(min_length=8192, max_length=8192, num_examples=2,
                                 batch_size=64, bucket=32, max_batch_tokens=16416))
  setup = build.setup(config)
  tokens = np.ones((1, 8), np.int32)
  params = setup.model.init(jax.random.key(0), tokens)["params"]
  assert evaluate.eval_batch_size(config, 16416) == 1
  row = evaluate.evaluate_length(setup, params, 8192)
  assert row["length"] == 8192 and row["num_examples"] == 2
  assert 0.0 <= row["token_accuracy"] <= 1.0
  assert calls and calls[0][1] == 16416, "long sequences take the O(T * block) path"


def test_eval_batch_shrinks_with_length():
  config = tiny_config(eval=dict(batch_size=256, max_batch_tokens=4096))
  assert evaluate.eval_batch_size(config, 16) == 256
  assert evaluate.eval_batch_size(config, 64) == 64
  assert evaluate.eval_batch_size(config, 100000) == 1


@pytest.mark.slow
@pytest.mark.integration
def test_cli_evaluation_at_64k_tokens_within_ten_minutes(tmp_path):
  """demo.py:tiny evaluated at copy length 32768 (65,537 tokens, 16 examples) on the CPU.

  Measured here (2 cores, jax 0.11.2): 177 s of evaluation, 3 min 8 s in all, peak RSS 2.0 GB.
  """
  import json  # pylint: disable=import-outside-toplevel
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  import time  # pylint: disable=import-outside-toplevel
  from conftest import ROOT  # pylint: disable=import-outside-toplevel
  t0 = time.time()
  result = subprocess.run(
      [sys.executable, "-m", "lengthgen.cli", "--config=demo:tiny",
       f"--workdir={tmp_path}", "--config.eval.min_length=32768",
       "--config.eval.max_length=32768"], cwd=ROOT, capture_output=True, text=True,
      timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  assert time.time() - t0 < 600
  [row] = json.loads((tmp_path / "results.json").read_text())["eval"]
  assert row["length"] == 32768 and row["num_examples"] == 16
