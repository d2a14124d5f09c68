"""scripts/hinting_table.py, scripts/copy_errors.py, scripts/context_extension.py's and
scripts/addition_attention.py's helpers on synthetic inputs."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import addition_attention  # noqa: E402
import context_extension  # noqa: E402
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


def test_max_multiplicity_counts_supervised_non_eos_tokens():
  eos = 2
  answers = np.array([[5, 5, 7, 5, eos, 0], [4, 6, 8, eos, 0, 0], [9, 9, 9, 9, 9, 9]])
  mask = np.array([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0], [0, 1, 1, 0, 0, 0]], bool)
  np.testing.assert_array_equal(copy_errors.max_multiplicity(answers, mask, eos), [3, 1, 2])


def test_exact_match_by_multiplicity_splits_the_evaluation_examples(tiny, tmp_path):
  from lengthgen import analysis, evaluate, train
  config = tiny(task="sort", task_options={"alphabet_size": 4})
  train.train_and_evaluate(config, str(tmp_path), verbose=False)
  run = analysis.TrainedRun(str(tmp_path))
  split = copy_errors.exact_by_multiplicity(run, 6, draws=1)
  assert set(split) <= set(range(2, 7))  # 6 values of 4 symbols repeat one at least twice
  assert sum(n for n, _ in split.values()) == config.eval.num_examples
  row = evaluate.evaluate_length(run.setup, run.params, 6)
  assert sum(right for _, right in split.values()) / config.eval.num_examples == pytest.approx(
      row["exact_match"])
  assert sum(n for n, _ in copy_errors.exact_by_multiplicity(run, 6, draws=3).values()) == (
      3 * config.eval.num_examples)
  train_split = copy_errors.training_multiplicities(run, num_examples=200)
  assert sum(train_split.values()) == pytest.approx(1.0)
  assert min(train_split) >= 1 and max(train_split) <= config.train.max_length


def test_context_extension_methods_scale_with_the_factor():
  table = context_extension.methods(2.5, 18)
  assert tuple(table) == context_extension.METHOD_NAMES
  assert table["pi"][:2] == ("rope_pi", {"scale": 2.5})
  assert table["ntk"][:2] == ("rope_ntk", {"scale": 2.5})
  assert table["yarn"][1] == {"scale": 2.5, "train_length": 18}
  assert table["e2llm"][1]["train_scales"] == [1.0, 2.5]
  assert table["e2llm"][3] == table["anchor"][3] == {"max_offset": 45}
  with pytest.raises(ValueError, match="factor"):
    context_extension.methods(0.5, 18)


def test_context_extension_builds_a_fine_tune_and_averages_seeds(tmp_path):
  from lengthgen.workdir import prepare_workdir
  parent = context_extension.base_config(40, train_max=4, eval_max=16, seed=3, num_seeds=2)
  prepare_workdir(parent, str(tmp_path))  # a parent workdir (config.json) to fine-tune from
  tokens = context_extension.train_tokens(parent)
  assert tokens == 2 * 4 + 1  # n source tokens, the separator, the n-token copy
  method = context_extension.methods(2.0, tokens)["yarn"]
  tuned = context_extension.with_method(parent, method, fine_tune_from=str(tmp_path), steps=8,
                                        fine_tune_max=8)
  assert (tuned.model.positional, tuned.train.max_length, tuned.train.init_from) == (
      "rope_yarn", 8, str(tmp_path))
  assert tuned.train.steps == 8 and tuned.train.warmup_steps == 2
  assert tuned.train.num_seeds == 2 and tuned.train.seed == 3
  zero = context_extension.with_method(parent, method)
  assert zero.train == parent.train and zero.model.positional_options["scale"] == 2.0
  recs = [{"eval": _eval({1: 1.0, 2: 0.5})}, {"eval": _eval({1: 0.0, 2: 0.5})}]
  assert context_extension.exact_at(recs, 1) == (0.5, 0.5)
  mean = context_extension.mean_record(recs, (1, 1))
  assert mean["train_lengths"] == [1, 1]
  assert [r["exact_match"] for r in mean["eval"]] == [0.5, 0.5]


def test_addition_attention_finds_the_attended_digit_of_each_answer_step():
  n = 3  # a1 a2 a3 + b1 b2 b3 = s1 s2 s3 s4: the step predicting s_d sits at 2n + d
  t = 3 * n + 3
  w = np.zeros((1, 2, 1, t, t))  # L, B, H, T, T
  for d in range(1, n + 1):
    q = 2 * n + d
    w[0, :, 0, q, d - 1] = 1.0           # operand a: digit d
    w[0, :, 0, q, n + 1 + (d % n)] = 1.0  # operand b: digit d + 1 (wrapping)
  w[0, 1, 0, 2 * n + 1, :n] = [0.1, 0.2, 0.7]  # example 1: the '=' step reads a's digit 3
  a, b = addition_attention.digit_argmax(w, n)
  assert a.shape == b.shape == (1, 1, 2, n)
  assert a[0, 0, 0].tolist() == [1, 2, 3] and a[0, 0, 1].tolist() == [3, 2, 3]
  assert b[0, 0, 0].tolist() == [2, 3, 1]
