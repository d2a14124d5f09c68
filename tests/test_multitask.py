"""Task hinting: hint tasks, per-task heads, loss weighting, per-task metrics and results."""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tiny_config
from lengthgen import multitask
from lengthgen.config import ConfigError
from lengthgen.tasks.hints import HINT_TASKS


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


def test_validation_names_the_field():
  with pytest.raises(ConfigError, match=r"config.hints\[0\].name.*valid hint tasks"):
    tiny_config(task="sort", hints=[{"name": "nope"}])
  with pytest.raises(ConfigError, match=r"config.hints\[0\].weight"):
    _config(weight=-1.0)
  with pytest.raises(ConfigError, match="config.multitask_head"):
    _config(head="shared")
  with pytest.raises(ConfigError, match="sum to"):
    tiny_config(task="sort", hints=[{"name": "successor", "fraction": 0.6},
                                    {"name": "fill", "fraction": 0.5}])


def test_union_vocab_keeps_main_ids_and_mixes_batches():
  s = multitask.setup(_config(hints=("successor", "fill")))
  main_vocab = s.specs[0].task.vocab
  assert s.vocab[:len(main_vocab)] == main_vocab
  assert (s.tables[0] == np.arange(len(main_vocab))).all()
  inputs = multitask.training_inputs(s, 3)
  assert np.bincount(inputs["task_ids"]).tolist() == [4, 2, 2]
  again = multitask.training_inputs(s, 3)
  assert all((inputs[k] == again[k]).all() for k in inputs)
  # Remapped hint tokens name the same symbols as in the hint task's own vocabulary.
  row = inputs["tokens"][inputs["task_ids"] == 1][0]
  assert s.vocab.index("?") in row


def test_per_task_heads_select_by_task_id():
  s = multitask.setup(_config())
  inputs = multitask.training_inputs(s, 0)
  params = s.model.init(jax.random.key(0), inputs["tokens"], inputs["positions"],
                        task_ids_B=inputs["task_ids"])["params"]
  tokens, positions = inputs["tokens"][:2], inputs["positions"][:2]
  apply = jax.jit(lambda p, k: s.model.apply({"params": p}, tokens, positions,
                                             task_ids_B=jnp.full((2,), k)))
  out = {k: apply(params, k) for k in (0, 1)}
  v = len(s.vocab)
  kernel = params["trunk"]["head"]["logits"]["kernel"]
  assert kernel.shape[-1] == 2 * v
  assert not np.allclose(out[0], out[1])
  # Head k's logits are exactly the readout of columns k*V..(k+1)*V.
  zeroed = jax.tree.map(lambda x: x, params)
  zeroed["trunk"]["head"]["logits"]["kernel"] = kernel.at[:, v:].set(0.0)
  zeroed["trunk"]["head"]["logits"]["bias"] = \
      params["trunk"]["head"]["logits"]["bias"].at[v:].set(0.0)
  z = {k: apply(zeroed, k) for k in (0, 1)}
  np.testing.assert_allclose(z[0], out[0], rtol=1e-6)
  np.testing.assert_allclose(z[1], 0.0, atol=1e-7)


def test_zero_weight_task_gets_no_gradient():
  s = multitask.setup(_config(weight=0.0))
  inputs = multitask.training_inputs(s, 0)
  params = s.model.init(jax.random.key(0), inputs["tokens"], inputs["positions"],
                        task_ids_B=inputs["task_ids"])["params"]

  def grads(inp, weights):
    fn = lambda p: multitask.loss_and_metrics(p, inp, jax.random.key(0), model=s.model,
                                              names=tuple(s.names), weights=weights,
                                              train=False)[0]
    return jax.jit(jax.grad(fn))(params)

  g = grads(inputs, (1.0, 0.0))
  v = len(s.vocab)
  head = g["trunk"]["head"]["logits"]
  assert float(jnp.abs(head["kernel"][:, v:]).max()) == 0.0
  assert float(jnp.abs(head["bias"][v:]).max()) == 0.0
  # Equal to the gradient of the main examples alone.
  main = {k: x[inputs["task_ids"] == 0] for k, x in inputs.items()}
  g_main = grads(main, (1.0, 0.0))
  for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_main)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)  # float32 sums
  # With weight 1 the hint head does get a gradient.
  g1 = grads(inputs, (1.0, 1.0))
  assert float(jnp.abs(g1["trunk"]["head"]["logits"]["kernel"][:, v:]).max()) > 0


@pytest.mark.parametrize("head", ["per_task", "indicator"])
def test_tiny_multitask_run_end_to_end(tmp_path, head):
  from lengthgen.train import train_and_evaluate
  config = _config(head=head, hints=("successor", "count_smaller"),
                   train=dict(steps=8, batch_size=8, max_length=6, warmup_steps=2,
                              checkpoint_every=4, log_every=4),
                   eval=dict(max_length=8, num_examples=8, batch_size=8, bucket=16))
  results = train_and_evaluate(config, str(tmp_path), verbose=False)
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
