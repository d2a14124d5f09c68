"""Task hinting through the one training loop: a mixture of a main task and hint tasks.

Hint tasks, per-task readouts, loss weighting, per-task metrics and results, and every
feature of single-task runs (vmapped seeds, init_from, 4 devices, resume, restore).
"""

from __future__ import annotations

import dataclasses
import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tiny_config
from lengthgen import analysis, build, data, train, workdir
from lengthgen.config import ConfigError
from lengthgen.tasks.hints import HINT_TASKS
from test_parallel import run_with_devices


def _config(head="per_task", weight=1.0, hints=("successor",), **overrides):
  return tiny_config(task="sort", task_options={"alphabet_size": 8}, multitask_head=head,
                     hints=[{"name": h, "options": {"alphabet_size": 8}, "weight": weight,
                             "fraction": 0.25} for h in hints], **overrides)


@pytest.mark.parametrize("name", sorted(HINT_TASKS))
def test_hint_targets_agree_with_independent_solver(name):
  task = HINT_TASKS[name](alphabet_size=5)
  for length in (1, 2, 7, 12):
    batch = task.sample(np.random.default_rng(length), 64, length)
    assert all(task.verify(row) for row in batch.tokens)
    # The verifier can fail: corrupting the answer token is caught.
    bad = batch.tokens.copy()
    bad[:, -1] = np.where(bad[:, -1] == 3, 4, 3)
    assert not any(task.verify(row) for row in bad)


def test_hint_answers_by_hand():
  sym = lambda i: 3 + i  # a{i}
  succ, pred, count = HINT_TASKS["successor"](8), HINT_TASKS["predecessor"](8), \
      HINT_TASKS["count_smaller"](8)
  source = [sym(3), sym(1), sym(4), sym(1), succ.token("?"), sym(1)]
  assert succ.solve(source) == [sym(3)]
  assert pred.solve(source) == [succ.token("none")]
  assert count.solve(source[:-1] + [sym(4)]) == [count.token("d3")]
  seq = np.asarray([[sym(3), sym(1), sym(4), sym(1)]])
  assert succ.answer(seq, np.asarray([sym(4)])).tolist() == [[succ.token("none")]]
  assert count.answer(np.tile(seq, (1, 3)), np.asarray([sym(4)])).tolist() == \
      [[count.token("d0"), count.token("d9")]]


def test_per_element_hints_by_hand():
  sym = lambda i: 3 + i  # a{i}
  each, pairs = HINT_TASKS["successor_each"](8), HINT_TASKS["identity_successor"](8)
  none = each.token("none")
  source = [sym(3), sym(1), sym(4), sym(1)]
  assert each.solve(source) == [sym(4), sym(3), none, sym(3)]
  assert pairs.solve(source) == [sym(3), sym(4), sym(1), sym(3), sym(4), none, sym(1), sym(3)]
  seq = np.asarray([source, [sym(2)] * 4])
  assert each.answer(seq, None).tolist() == [[sym(4), sym(3), none, sym(3)], [none] * 4]
  assert pairs.answer(seq, None)[1].tolist() == [sym(2), none] * 4
  stable = HINT_TASKS["successor_stable"](8)
  # a1 at index 1 has a later copy (index 3); the last a1 goes on to a3.
  assert stable.solve(source) == [sym(4), sym(1), none, sym(3)]
  assert stable.answer(seq, None).tolist() == [[sym(4), sym(1), none, sym(3)],
                                               [sym(2)] * 3 + [none]]
  # Followed from the first minimum (x again: its next copy; a new value: its first copy),
  # the stable successors visit the whole sorted sequence.
  rng = np.random.default_rng(0)
  for _ in range(20):
    row = rng.integers(3, 7, size=9).tolist()
    nxt, i, walk = stable.solve(row), row.index(min(row)), []
    while True:
      walk.append(row[i])
      if nxt[i] == none:
        break
      i = (row.index(row[i], i + 1) if nxt[i] == row[i] else row.index(nxt[i]))
    assert walk == sorted(row)
  equal = HINT_TASKS["count_equal"](8)
  assert equal.solve(source + [equal.token("?"), sym(1)]) == [equal.token("d2")]
  assert equal.answer(np.tile(seq[:1], (1, 3)), np.asarray([sym(1)])).tolist() == \
      [[equal.token("d0"), equal.token("d6")]]


def test_validation_names_the_field():
  with pytest.raises(ConfigError, match=r"config.hints\[0\].name: unknown value 'nope'; valid "
                     r"values: .*successor"):
    tiny_config(task="sort", hints=[{"name": "nope"}])
  with pytest.raises(ConfigError, match=r"config.hints\[0\].weight"):
    _config(weight=-1.0)
  with pytest.raises(ConfigError, match=r"config.hints\[0\].weight must be a finite number"):
    _config(weight=float("nan"))
  with pytest.raises(ConfigError, match="config.multitask_head"):
    _config(head="shared")
  with pytest.raises(ConfigError, match="sum to"):
    tiny_config(task="sort", hints=[{"name": "successor", "fraction": 0.6},
                                    {"name": "fill", "fraction": 0.5}])
  with pytest.raises(ConfigError, match=r"config.hints must be a list of \{name, options, "
                     r"weight, fraction\} mappings, got str"):
    tiny_config(task="sort", hints="successor")
  with pytest.raises(ConfigError, match=r"unknown field\(s\) config.hints\[0\].wieght; valid "
                     r"fields of config.hints\[0\]: name, options, weight, fraction"):
    tiny_config(task="sort", hints=[{"name": "successor", "wieght": 1.0}])


def test_single_task_is_the_one_task_mixture():
  setup = build.setup(tiny_config())
  assert setup.names == ("copy",) and setup.weights == (1.0,)
  assert setup.vocab == tuple(setup.task.vocab) and setup.model.num_tasks == 1
  inputs = data.training_inputs(setup, 0)
  assert (inputs["task_ids"] == 0).all()


def test_union_vocab_keeps_main_ids_and_mixes_batches():
  s = build.setup(_config(hints=("successor", "fill")))
  main_vocab = s.task.vocab
  assert list(s.vocab[:len(main_vocab)]) == main_vocab
  assert (s.tasks[0].table == np.arange(len(main_vocab))).all()
  inputs = data.training_inputs(s, 3)
  assert np.bincount(inputs["task_ids"]).tolist() == [4, 2, 2]
  again = data.training_inputs(s, 3)
  chex.assert_trees_all_equal(inputs, again)
  # Remapped hint tokens name the same symbols as in the hint task's own vocabulary.
  row = inputs["tokens"][inputs["task_ids"] == 1][0]
  assert s.vocab.index("?") in row


def _init(s, inputs):
  return s.model.init(jax.random.key(0), inputs["tokens"], inputs["positions"],
                      task_ids_B=inputs["task_ids"])["params"]


def test_per_task_readouts_select_by_task_id_without_inflating_the_embedding():
  s = build.setup(_config())
  inputs = data.training_inputs(s, 0)
  params = _init(s, inputs)
  v = len(s.vocab)
  assert params["embed"]["embedding"].shape[0] == v
  tokens, positions = inputs["tokens"][:2], inputs["positions"][:2]
  apply = jax.jit(lambda p, k: s.model.apply({"params": p}, tokens, positions,
                                             task_ids_B=jnp.full((2,), k)))
  out = {k: apply(params, k) for k in (0, 1)}
  kernel = params["head"]["logits"]["kernel"]
  assert kernel.shape[-1] == 2 * v
  assert not np.allclose(out[0], out[1])
  # Readout k's logits are exactly the columns k*V..(k+1)*V.
  zeroed = jax.tree.map(lambda x: x, params)
  zeroed["head"]["logits"]["kernel"] = kernel.at[:, v:].set(0.0)
  zeroed["head"]["logits"]["bias"] = params["head"]["logits"]["bias"].at[v:].set(0.0)
  z = {k: apply(zeroed, k) for k in (0, 1)}
  np.testing.assert_allclose(z[0], out[0], rtol=1e-6)
  np.testing.assert_allclose(z[1], 0.0, atol=1e-7)


def test_zero_weight_task_gets_no_gradient():
  config = _config(weight=0.0)
  s = build.setup(config)
  inputs = data.training_inputs(s, 0)
  params = _init(s, inputs)

  def grads(inp, setup):
    fn = lambda p: train.loss_fn(p, inp, jax.random.key(0), setup=setup, train=False)[0]
    return jax.jit(jax.grad(fn))(params)

  g = grads(inputs, s)
  v = len(s.vocab)
  head = g["head"]["logits"]
  assert float(jnp.abs(head["kernel"][:, v:]).max()) == 0.0
  assert float(jnp.abs(head["bias"][v:]).max()) == 0.0
  # Equal to the gradient of the main examples alone.
  main = {k: x[inputs["task_ids"] == 0] for k, x in inputs.items()}
  chex.assert_trees_all_close(g, grads(main, s), rtol=1e-4, atol=1e-5)  # float32 sums
  # With weight 1 the hint readout does get a gradient.
  g1 = grads(inputs, build.setup(_config(weight=1.0)))
  assert float(jnp.abs(g1["head"]["logits"]["kernel"][:, v:]).max()) > 0


@pytest.mark.integration
@pytest.mark.parametrize("head", ["per_task", pytest.param("indicator", marks=pytest.mark.slow)])
def test_tiny_multitask_run_end_to_end(tmp_path, head):
  config = _config(head=head, hints=("successor", "count_smaller"),
                   train=dict(steps=8, batch_size=8, max_length=6, warmup_steps=2,
                              checkpoint_every=4, log_every=4),
                   eval=dict(max_length=8, num_examples=8, batch_size=8, bucket=16))
  results = train.train_and_evaluate(config, str(tmp_path), verbose=False)
  saved = json.loads((tmp_path / "results.json").read_text())
  assert saved == json.loads(json.dumps(results))
  assert saved["task"] == "sort" and [r["length"] for r in saved["eval"]] == list(range(1, 9))
  assert set(saved["tasks"]) == {"successor", "count_smaller"}
  for r in saved["tasks"].values():
    assert [row["length"] for row in r["eval"]] == list(range(1, 9))
    assert r["score"]["metric"] == "exact_match"
  lines = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  train_lines = [l for l in lines if l["split"] == "train"]
  assert [l["step"] for l in train_lines] == [4, 8]
  for name in ("sort", "successor", "count_smaller"):
    assert {f"loss_{name}", f"exact_match_{name}", f"token_accuracy_{name}"} <= set(
        train_lines[-1])
  assert os.path.exists(tmp_path / "length_generalization.png")
  # The workdir restores through the one path (notebooks, fine-tuning): nothing renamed.
  run = analysis.TrainedRun(str(tmp_path))
  assert run.step == 8 and run.setup.names == ("sort", "successor", "count_smaller")
  maps = run.attention_maps(5, task_index=1)
  assert maps["weights"].shape[:3] == (2, 1, 2)
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["4", "8"]


_HINT_TRAIN = dict(steps=6, batch_size=8, max_length=6, warmup_steps=2, checkpoint_every=3,
                   log_every=3)


@pytest.mark.integration
def test_hint_run_with_vmapped_seeds_equals_separate_seeds(tmp_path):
  config = _config(train={**_HINT_TRAIN, "num_seeds": 3, "seed": 2})
  _, stacked = train.train(config, str(tmp_path / "all"))
  for i in range(3):
    single = dataclasses.replace(config, train=dataclasses.replace(config.train, seed=2 + i,
                                                                   num_seeds=1))
    _, params = train.train(single, str(tmp_path / f"s{i}"))
    chex.assert_trees_all_close(params, jax.tree.map(lambda x, i=i: x[i], stacked),
                                rtol=1e-3, atol=2e-4)
  first = jax.tree.leaves(stacked)[0]
  assert not np.allclose(first[0], first[1]), "seeds differ"


@pytest.mark.integration
def test_hint_results_with_seeds_keep_every_task(tmp_path):
  config = _config(train={**_HINT_TRAIN, "num_seeds": 2},
                   eval=dict(max_length=7, num_examples=8, batch_size=8, bucket=16))
  results = train.train_and_evaluate(config, str(tmp_path), verbose=False)
  assert [s["seed"] for s in results["seeds"]] == [0, 1]
  assert all(set(s["tasks"]) == {"successor"} for s in results["seeds"])
  assert results["tasks"] == results["seeds"][0]["tasks"]


@pytest.mark.integration
def test_hint_run_fine_tunes_from_a_hint_parent(tmp_path):
  parent = _config(train=_HINT_TRAIN)
  workdir.prepare_workdir(parent, str(tmp_path / "parent"))
  _, parent_params = train.train(parent, str(tmp_path / "parent"))
  child = _config(train={**_HINT_TRAIN, "max_length": 8,
                         "init_from": str(tmp_path / "parent")})
  _, params = train.train(child, str(tmp_path / "child"), until=0)
  chex.assert_trees_all_equal(parent_params, params)
  assert sorted(os.listdir(tmp_path / "parent" / "checkpoints")) == ["3", "6"]
  # Three seeds fine-tuned from a one-seed parent all start from its parameters.
  seeds = _config(train={**_HINT_TRAIN, "num_seeds": 3, "init_from": str(tmp_path / "parent")})
  _, params = train.train(seeds, str(tmp_path / "seeds"), until=0)
  for i in range(3):
    chex.assert_trees_all_equal(parent_params, jax.tree.map(lambda x, i=i: x[i], params))
  # A single-task parent does not fit a per-task mixture: a clear error, nothing renamed.
  single = tiny_config(task="sort", task_options={"alphabet_size": 8}, train=_HINT_TRAIN)
  workdir.prepare_workdir(single, str(tmp_path / "single"))
  train.train(single, str(tmp_path / "single"))
  child = _config(train={**_HINT_TRAIN, "init_from": str(tmp_path / "single")})
  with pytest.raises(ConfigError, match="do not match this model"):
    train.train(child, str(tmp_path / "child2"))
  assert sorted(os.listdir(tmp_path / "single" / "checkpoints")) == ["3", "6"]


@pytest.mark.slow  # the same property is checked in the default run by test_train.py::test_resume_equals_uninterrupted (one loop)
@pytest.mark.integration
def test_hint_run_resumes_bitwise(tmp_path):
  config = _config(train=_HINT_TRAIN, model=dict(num_layers=2, width=32, num_heads=2,
                                                  dropout=0.1))
  _, full = train.train(config, str(tmp_path / "full"))
  workdir.prepare_workdir(config, str(tmp_path / "split"))
  train.train(config, str(tmp_path / "split"), until=3)
  _, resumed = train.train(config, str(tmp_path / "split"))
  chex.assert_trees_all_equal(full, resumed)
  assert workdir.restore(str(tmp_path / "split"))[2] == 6


@pytest.mark.integration
def test_hint_run_on_four_devices_matches_one_device(tmp_path):
  config = _config(train=_HINT_TRAIN)
  _, params = train.train(config, str(tmp_path / "one"))
  np.savez(tmp_path / "one.npz", *[np.asarray(x) for x in jax.tree.leaves(params)])
  out = run_with_devices(f"""
      import jax, numpy as np
      from test_multitask import _config, _HINT_TRAIN
      from lengthgen import train
      assert jax.device_count() == 4
      config = _config(train=_HINT_TRAIN)
      wd = {str(tmp_path / "four")!r}
      _, params = train.train(config, wd, until=3)  # checkpoint, then resume sharded
      _, params = train.train(config, wd)
      np.savez(wd + ".npz", *[np.asarray(x) for x in jax.tree.leaves(params)])
      print("devices", len(jax.tree.leaves(params)[0].sharding.device_set))
      """)
  assert "devices 4" in out
  ref, got = np.load(tmp_path / "one.npz"), np.load(tmp_path / "four.npz")
  for name in ref.files:
    np.testing.assert_allclose(got[name], ref[name], rtol=1e-3, atol=2e-4)
