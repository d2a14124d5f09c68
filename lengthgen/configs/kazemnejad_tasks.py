"""Kazemnejad et al. 2023, the tasks beside Copy: reverse, sort, summation, parity, SCAN.

One run:
    lengthgen-train --config=kazemnejad_tasks:sort \
        --workdir=workdirs/kz_sort_nope --config.model.positional=nope
The grid of one task, 3 seeds trained in one program per encoding (scripts/sweep.py):
    python scripts/sweep.py --config=kazemnejad_tasks:sort,cpu \
        --dir=results/kazemnejad_sort_cpu --encodings=nope,t5,alibi,rope,sinusoidal \
        --seeds=3,4,5 --vmap_seeds
(the same with ``parity,cpu`` and ``--dir=results/kazemnejad_parity_cpu``).

The layout follows the authors' code (McGill-NLP/length-generalization at 40f8a44: the
``s2s_*`` data configs, their instance processors and ``scripts/dataset_builders``): a fixed
instruction token first (``prompt=True``, for their instruction words: "Reverse:", "Sort the
following list [", "Compute:", "Is the number of 1's even in the sequence [", "Solve:"), their
separators between elements (``commas`` for sort and parity, ``plus`` for summation), the
fixed words between question and answer as our separator ``|``, EOS supervised and required.
Splits: reverse trains on 2-20 and tests 21-40 (split ``mc_tr20_ts40``, 100 symbols); sort
(single-digit, ``len_sngd_tr8_ts16``, 50 ordered symbols), summation (mod 10, digits 1-9,
``len_tr8_ts16``) and parity (``len_tr8_ts16``) train on 2-8 and test 9-16; SCAN trains on
commands of at most 25 actions and tests 26-48 (``mdlen_tr25_ts48``). Training from 2: their
copy and reverse validation sets start at 2, and summation's validation prompts (12-24 T5
tokens, two per digit) put its lengths at 2-8, though its builder defaults to 4; sort's and
parity's minimum is not recorded (builder defaults 4 and 3), we take 2 as for summation.
Scale-downs (as ``kazemnejad_copy.py``): 4 layers x 128 (theirs 12 x 768), 5,000
fresh-sample steps of batch 64 at lr 5e-4 (theirs 40k steps of batch 64 over a fixed training
set at 3e-5), 256 evaluation examples per length, the final checkpoint (theirs the best on
validation). Remaining differences: the fixed words are one token each (theirs several
T5 tokens, so their content starts a few positions later); SCAN draws a training length
uniformly, then a command of that many actions (``missing="next"``: unreachable lengths take the
next reachable one), where theirs draws commands uniformly from the pool of at most 25 actions
(most of them 4-12 actions long), and our score over 26-48 weights the reachable lengths by
how many integers map to them (theirs: by their number of commands). Removing those two needs a
length distribution per task in ``lengthgen.data`` (not a task option).

Anchors (the paper's exact match beyond training, mean over its 3 seeds, from the authors'
``results/sanity_check.jsonl`` and ``classic.jsonl``): reverse NoPE 0.230, T5 0.242, ALiBi
0.171, RoPE 0.078, APE 0.023; SCAN NoPE 0.797, T5 0.799, ALiBi 0.438, RoPE 0.283, APE 0.057
(over examples). Their sort, summation and parity numbers are not in the repository (only
the ranks: NoPE first on single-digit sort in all 3 seeds, on summation in 2 of 3).

Runtime and result of the full-size config: no run is recorded. At CPU scale (``cpu``:
2 x 64, batch 32, dropout 0, lr 1e-3; steps per task, the budget at which one NoPE seed fit
the training lengths, exact match >= 0.95 in distribution, chosen on training lengths only,
seed 0, jax 0.11.2, 2 shared CPU cores) the calibrations were:
  sort: 1,500 steps 0.845 (125 s), 3,000 steps 0.948 (253 s), 4,000 steps 0.961 (256 s);
  parity: 1,500 steps 1.000 (117 s);
  reverse (100 symbols): 1,500 steps 0.031 (260 s); with 16 symbols 0.049 (203 s): does
    not fit within ~5 minutes of one seed, not run;
  summation: 1,500 steps 0.180 (117 s; only length 2 fit: 0.66; 3-8 at chance, 0.1), 4,500 steps
    0.295 (206 s; 2 fits, 3 at 0.45, 4-8 at chance): does not fit, not run;
  SCAN: 1,500 steps 0.532 (174 s; 1.00 at 1-2 actions, 0.16-0.43 at 17-25).
The grids (the commands above, seeds 3-5, 128 examples per length; exact match beyond
training, mean ± std over seeds, in distribution in brackets; results/kazemnejad_<task>_cpu/):
  sort (about 42 min, 7.6-9.2 min per encoding): NoPE 0.384 ± 0.101 (0.927), ALiBi 0.354 ±
    0.048 (0.991), T5 0.307 ± 0.074 (0.940), RoPE 0.067 ± 0.048 (0.996), APE 0.000 (0.983);
  parity (about 25 min, 3.5-6.3 min per encoding): NoPE 0.701 ± 0.086 (1.000), ALiBi 0.557 ±
    0.027, RoPE 0.528 ± 0.012, T5 0.478 ± 0.016 (all 1.000 in distribution), APE 0.208 ±
    0.150 (0.498: not fitted).
Presets: ``reverse`` (the default ``''``), ``sort``, ``summation``, ``parity``, ``scan``;
``cpu`` (with each task's calibrated steps); ``tiny`` (seconds, tests).
"""

import ml_collections

from lengthgen.config import default_config_dict
from lengthgen.configs import apply_presets

TASKS = ("reverse", "sort", "summation", "parity", "scan")
PRESETS = ["", "tiny", "cpu"] + [f"{t}{p}" for t in TASKS for p in ("", ",tiny", ",cpu")]

# Training steps of the ``cpu`` preset: the calibrated budgets (sort, parity) and, for the
# tasks that did not fit within about 5 minutes of one seed, the budget calibrated last.
CPU_STEPS = {"reverse": 1500, "sort": 4000, "summation": 4500, "parity": 1500, "scan": 1500}


def _task(c: ml_collections.ConfigDict, task: str, options: dict, train: tuple[int, int],
          test_max: int) -> None:
  c.task = task
  c.task_options = dict(options)
  c.train.update(min_length=train[0], max_length=train[1])
  c.eval.update(min_length=train[0], max_length=test_max)


def reverse(c: ml_collections.ConfigDict) -> None:
  """"Reverse: a b c [SEP] c b a" (split mc_tr20_ts40): 100 symbols, train 2-20, test 21-40."""
  _task(c, "reverse", {"variant": "reverse", "prompt": True, "alphabet_size": 100}, (2, 20), 40)


def sort(c: ml_collections.ConfigDict) -> None:
  """Single-digit sort (len_sngd_tr8_ts16): "Sort the following list [ M, E ]. The sorted list
  is [ E, M ]." over 50 ordered symbols, train 2-8, test 9-16."""
  _task(c, "sort", {"prompt": True, "commas": True, "alphabet_size": 50}, (2, 8), 16)


def summation(c: ml_collections.ConfigDict) -> None:
  """"Compute: 3 + 5 + 1 . [SEP] The answer is 9 ." (len_tr8_ts16): digits 1-9, the sum mod
  10, train 2-8, test 9-16."""
  _task(c, "summation", {"prompt": True, "plus": True}, (2, 8), 16)


def parity(c: ml_collections.ConfigDict) -> None:
  """"Is the number of 1's even in the sequence [ 1, 0 ] ? The answer is No." (len_tr8_ts16):
  train 2-8, test 9-16."""
  _task(c, "parity", {"prompt": True, "commas": True}, (2, 8), 16)


def scan(c: ml_collections.ConfigDict) -> None:
  """SCAN with "Solve:" first (mdlen_tr25_ts48): train on commands of 1-25 actions, test
  26-48."""
  _task(c, "scan", {"prompt": True, "missing": "next"}, (1, 25), 48)


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  c = default_config_dict()
  c.model.update(kind="decoder", num_layers=4, width=128, num_heads=4, mlp_ratio=4.0,
                 dropout=0.1, positional="nope", normalizer="softmax")
  c.train.update(steps=5000, batch_size=64, learning_rate=5e-4, warmup_steps=200,
                 weight_decay=0.01, grad_clip=1.0, seed=0, checkpoint_every=1000, log_every=250)
  c.eval.update(num_examples=256, batch_size=256, bucket=32)
  reverse(c)
  chosen = [t for t in TASKS if t in (p.strip() for p in arg.split(","))] or ["reverse"]
  presets = {"reverse": reverse, "sort": sort, "summation": summation, "parity": parity,
             "scan": scan}
  return apply_presets(c, arg, __file__, presets,
                       cpu=dict(steps=CPU_STEPS[chosen[-1]], dropout=0.0))
