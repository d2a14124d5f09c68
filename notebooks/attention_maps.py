# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Attention maps of a trained checkpoint, at a training length and beyond
# Loads the newest checkpoint of a workdir (set `LENGTHGEN_WORKDIR`; any run of
# `lengthgen-train`, e.g. `make demo`) and draws every layer's and head's attention on one
# fresh example at the longest training length and at a longer test length
# (`LENGTHGEN_TEST_LENGTH`, default twice the training maximum). Where length generalization
# fails, the maps usually show it: a head that tracks the diagonal in training blurs, or
# attends to the wrong offset, beyond it.

# %% tags=["parameters"]
import os
WORKDIR = os.environ.get('LENGTHGEN_WORKDIR', 'workdirs/demo')
TEST_LENGTH = int(os.environ.get('LENGTHGEN_TEST_LENGTH', '0'))  # 0: twice the training max
SEED_INDEX = 0  # which seed of a run that trained several in one program

# %%
import matplotlib.pyplot as plt
import numpy as np
from lengthgen import analysis

run = analysis.TrainedRun(WORKDIR, seed_index=SEED_INDEX)
train_max = run.config.train.max_length
test_length = TEST_LENGTH or 2 * train_max
print(f'{run.config.task} {run.config.task_options}, {run.config.model.positional} / '
      f'{run.config.model.normalizer}, checkpoint step {run.step}, seed {run.seed}; '
      f'trained on lengths {run.config.train.min_length}..{train_max}')

# %%
maps = {n: run.attention_maps(n) for n in (train_max, test_length)}
for n, m in maps.items():
  print(f'length {n}:', ' '.join(m['labels']))
  analysis.plot_attention(m, title=f'length {n} ({"train" if n <= train_max else "test"})')
  plt.show()

# %% [markdown]
# How concentrated is attention? The mean entropy of each head's rows (in nats), at both
# lengths: a head whose entropy grows with length is dispersing over the longer context.

# %%
for n, m in maps.items():
  w = m['weights'][:, 0, :, :int(m['lengths'][0]), :int(m['lengths'][0])]
  entropy = -(w * np.log(np.clip(w, 1e-12, None))).sum(-1).mean(-1)  # [L, H]
  print(f'length {n}: mean row entropy per layer x head\n', np.round(entropy, 2))
