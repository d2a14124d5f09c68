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
# # Leaderboard: which encoding generalizes best, per task
# Reads every sweep directory matching `LENGTHGEN_SWEEPS` (a glob, default `results/*_cpu`,
# the CPU reproductions of `scripts/reproduce_cpu.sh`), averages each grid point over its
# seeds and ranks the encodings of every task by out-of-distribution exact match (mean over
# the evaluated lengths beyond training). Then a task x encoding heat map of the same numbers.

# %% tags=["parameters"]
import os
SWEEPS = os.environ.get('LENGTHGEN_SWEEPS', 'results/*_cpu')

# %%
import glob

import matplotlib.pyplot as plt
import numpy as np
from lengthgen import analysis

dirs = sorted(d for d in glob.glob(SWEEPS) if os.path.isdir(d))
records = [r for d in dirs for r in analysis.load_sweep(d)]
rows = analysis.aggregate_over_seeds(records)
board = analysis.leaderboard(rows)
print(f'{len(dirs)} sweep directories, {len(records)} runs (one per seed)')
print(analysis.leaderboard_markdown(board))

# %%
def method(r):
  parts = [r['positional']]
  if r['positions'] != 'default':
    parts.append(r['positions'])
  if r['normalizer'] != 'softmax':
    parts.append(r['normalizer'])
  return '/'.join(parts)

tasks = list(board)
methods = sorted({method(r) for rs in board.values() for r in rs})
grid = np.full((len(tasks), len(methods)), np.nan)
for i, task in enumerate(tasks):
  for r in board[task]:
    grid[i, methods.index(method(r))] = r['out_mean']
fig, ax = plt.subplots(figsize=(1.1 * len(methods) + 3, 0.5 * len(tasks) + 1.5))
im = ax.imshow(grid, cmap='viridis', vmin=0, vmax=1)
ax.set_xticks(range(len(methods)), methods, rotation=45, ha='right')
ax.set_yticks(range(len(tasks)), tasks)
for i in range(len(tasks)):
  for j in range(len(methods)):
    if not np.isnan(grid[i, j]):
      ax.text(j, i, f'{grid[i, j]:.2f}', ha='center', va='center', color='w', fontsize=8)
fig.colorbar(im, label='exact match beyond training (mean over seeds)')
fig.tight_layout()
plt.show()
