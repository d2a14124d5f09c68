"""Kazemnejad et al. 2023: Copy (Repeat) and Copy (Repeat+Change), train 2-20, test 21-40.

One run:
    lengthgen-train --config=kazemnejad_copy \
        --workdir=workdirs/kz_nope --config.model.positional=nope
The grid, 3 seeds trained in one program per encoding (scripts/sweep.py):
    python scripts/sweep.py --config=kazemnejad_copy \
        --dir=results/kazemnejad_copy --encodings=nope,t5,alibi,rope,sinusoidal --seeds=0,1,2 \
        --vmap_seeds --parallel=5

The setting follows the authors' code (McGill-NLP/length-generalization): every sequence
starts with a fixed instruction token (``prompt=True``; theirs: "Copy:", "Replace X with Y
in"), training lengths 2-20, dropout 0.1, the T5 bias table shared by all layers (the
default), EOS supervised and required. Scale-downs: 4 layers x 128 (theirs 12 x 768),
5,000 fresh-sample steps of batch 64 at lr 5e-4 (theirs 40k steps over a fixed 100k-example
set at 3e-5), alphabet 16 for repeat (theirs ~6k symbols), 256 evaluation examples per
length (theirs 500), the final checkpoint (theirs the best on validation).
Anchors (the paper's exact match over 21-40): repeat NoPE 0.986, T5 0.771, ALiBi 0.289, RoPE
0.000, APE 0.000; repeat_change NoPE 0.967, T5 0.939, ALiBi 0.170.
Runtime and result of the full-size config: no run is recorded. At CPU scale (``cpu``,
``repeat_change,cpu``; scripts/reproduce_cpu.sh) the results are in results/README.md.
Presets: ``''`` Copy (Repeat); ``repeat_change`` Copy (Repeat+Change), alphabet 78 as
theirs; ``replace`` our random-sequence replacement (not the paper's task); ``cpu`` (2 x 64,
1,500 steps, batch 32, dropout 0: at this size dropout 0.1 kept NoPE from fitting the
training lengths, 0.987 ± 0.015 in distribution over 3 seeds against 1.000 without it;
4,000 steps for repeat_change, which 1,500 steps do not fit at all: one seed of NoPE
reached 0.000 in distribution at 1,500 steps (alphabet 64) and 0.998 at 4,000 (alphabet 78));
``tiny`` (seconds, tests).
"""

import ml_collections

from lengthgen.configs import apply_presets
from lengthgen.config import default_config_dict

PRESETS = ["", "repeat_change", "replace", "tiny", "repeat_change,tiny", "replace,tiny", "cpu",
           "repeat_change,cpu", "replace,cpu"]


def repeat_change(c: ml_collections.ConfigDict) -> None:
  """The authors' "Repeat+Change" split (rdc): "replace X with Y in X X X" -> "Y Y Y"; their
  alphabet for it has 78 symbols."""
  c.task_options.update(variant="repeat_change", alphabet_size=78)


def replace(c: ml_collections.ConfigDict) -> None:
  """Our random-sequence replacement (every a0 becomes a1): not the paper's task."""
  c.task_options.update(variant="replace")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  c = default_config_dict()
  c.task = "copy"
  c.task_options = {"variant": "repeat", "prompt": True}
  c.model.update(kind="decoder", num_layers=4, width=128, num_heads=4, mlp_ratio=4.0,
                 dropout=0.1, positional="nope", normalizer="softmax")
  c.train.update(steps=5000, batch_size=64, learning_rate=5e-4, warmup_steps=200,
                 weight_decay=0.01, grad_clip=1.0, min_length=2, max_length=20, seed=0,
                 checkpoint_every=1000, log_every=250)
  c.eval.update(min_length=2, max_length=40, num_examples=256, batch_size=256, bucket=32)
  return apply_presets(c, arg, __file__, {"repeat_change": repeat_change, "replace": replace},
                       cpu=dict(steps=4000 if "repeat_change" in arg else 1500, dropout=0.0))
