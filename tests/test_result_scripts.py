"""scripts/hinting_table.py and scripts/copy_errors.py on synthetic inputs."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import copy_errors  # noqa: E402
import hinting_table  # noqa: E402


def _eval(scores):
  return [{"length": n, "exact_match": s, "token_accuracy": s, "num_examples": 8}
          for n, s in scores.items()]


def _results(seed_scores, hint_scores=None):
  seeds = []
  for scores in seed_scores:
    seed = {"eval": _eval(scores)}
    if hint_scores is not None:
      seed["tasks"] = {"successor": {"eval": _eval(hint_scores)}}
    seeds.append(seed)
  return {"task": "sort", "train_lengths": [1, 4], "eval": seeds[0]["eval"], "seeds": seeds,
          "hints": ["successor"] if hint_scores is not None else [],
          "compute": {"train_seconds": 10.0, "eval_seconds": 2.0, "device": "cpu",
                      "jax": "0.x", "num_seeds_in_program": len(seeds)}}


def test_hinting_table_means_over_seeds_and_writes_both_files(tmp_path):
  lengths = range(1, 21)
  a = {n: 1.0 if n <= 4 else 0.5 for n in lengths}
  b = {n: 1.0 if n <= 4 else 0.0 for n in lengths}
  for name, res in (("none", _results([a, b])),
                    ("successor", _results([a, a], hint_scores={n: 1.0 for n in lengths}))):
    (tmp_path / name).mkdir()
    (tmp_path / name / "results.json").write_text(json.dumps(res))
  row = hinting_table.row(str(tmp_path / "none"))
  assert row["at_train"] == (1.0, 0.0, 4)
  assert row["at_2.5x"] == (0.25, 0.25, 10) and row["at_5x"] == (0.25, 0.25, 20)
  assert row["beyond"] == pytest.approx((0.25, 0.25))
  assert hinting_table.row(str(tmp_path / "successor"))["hints"] == "successor 1.00 / 1.00"
  out = tmp_path / "summary"
  subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "hinting_table.py"),
                  f"--runs={tmp_path}/*", f"--out={out}"], check=True, capture_output=True)
  text = (tmp_path / "summary.md").read_text()
  assert "| none | 2 | 1.000 ± 0.000 | 0.250 ± 0.250 |" in text
  assert "| successor | 2 |" in text and "successor 1.00 / 1.00" in text
  assert (tmp_path / "summary.png").stat().st_size > 0


def test_hinting_table_refuses_an_empty_glob(tmp_path):
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "hinting_table.py"),
                         f"--runs={tmp_path}/*", f"--out={tmp_path}/x"], capture_output=True,
                        text=True)
  assert proc.returncode != 0 and "no finished runs" in proc.stderr


def test_clamp_t5_table_copies_the_last_trained_bucket_only_into_t5_tables():
  table = np.arange(12, dtype=np.float32).reshape(2, 6)
  params = {"position_bias": {"table": table}, "block_0": {"mlp": {"kernel": table}}}
  out = copy_errors.clamp_t5_table(params, last_bucket=2)
  np.testing.assert_array_equal(out["position_bias"]["table"],
                                [[0, 1, 2, 2, 2, 2], [6, 7, 8, 8, 8, 8]])
  np.testing.assert_array_equal(out["block_0"]["mlp"]["kernel"], table)


def test_sort_error_kinds():
  eos = 2
  assert copy_errors.sort_error_kind(5, 4, None, eos) == "first (min)"
  assert copy_errors.sort_error_kind(6, 5, 5, eos) == "one copy too many"
  assert copy_errors.sort_error_kind(5, 6, 5, eos) == "one copy too few"
  assert copy_errors.sort_error_kind(6, eos, 5, eos) == "early eos"
  assert copy_errors.sort_error_kind(6, 8, 5, eos) == "skipped a value"
  assert copy_errors.sort_error_kind(8, 6, 5, eos) == "other"
