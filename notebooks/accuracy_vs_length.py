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
# # Accuracy vs length of a sweep
# Reads a sweep directory written by `scripts/sweep.py` (set `LENGTHGEN_SWEEP`) and draws
# exact match against length per encoding: mean over seeds with a +-std band.

# %% tags=["parameters"]
import os
SWEEP_DIR = os.environ.get('LENGTHGEN_SWEEP', 'results/kazemnejad_copy_cpu')

# %%
import matplotlib.pyplot as plt
from lengthgen import analysis

rows = analysis.aggregate_over_seeds(analysis.load_sweep(SWEEP_DIR))
print(analysis.table_markdown(rows))

# %%
for task in sorted({r['task'] for r in rows}):
  fig, ax = plt.subplots(figsize=(6, 4))
  for r in rows:
    if r['task'] != task or not r['curve']:
      continue
    n, m, s = zip(*r['curve'])
    ax.plot(n, m, marker='o', ms=3, label=f"{r['positional']}/{r['normalizer']}")
    ax.fill_between(n, [a - b for a, b in zip(m, s)], [a + b for a, b in zip(m, s)], alpha=0.2)
  ax.set(xlabel='length', ylabel='exact match', title=task, ylim=(-0.02, 1.02))
  ax.legend()
  plt.show()
