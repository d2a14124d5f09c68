"""Softplus attention (LSSA / LSSAR) against softmax on associative recall, trained at 64 tokens.

    lengthgen-train --config=softplus_recall \
        --workdir=workdirs/recall_lssar --config.model.normalizer=softplus_reweight
The grid, 3 seeds trained in one program per normalizer (scripts/sweep.py):
    python scripts/sweep.py --config=softplus_recall \
        --dir=results/softplus_recall --encodings=rope \
        --normalizers=softmax,ssmax,ssmax+qk_norm,softplus,softplus_reweight --seeds=0,1,2 \
        --vmap_seeds --parallel=5

"k3 v5 k1 v2 ... ? k1 | v2": length = number of key-value pairs, 1..31 in training (at most
66 tokens, the 64-token setting) and every length 1..255 at evaluation (up to 514 tokens,
8x). Keys are distinct within an example, drawn from 512; values from 16 (chance 1/16).
Model: 4 layers, width 128, 4 heads, RoPE; 5,000 steps of batch 64 at lr 5e-4. The fair
baseline is softmax with QK-norm and log-n scaling: ``ssmax+qk_norm`` (config.model.qk_norm
RMS-normalizes q and k; ssmax multiplies the logits by a learned s * log n).
Anchor: LSSAR above softmax at 4-8x the training length. No run of the full-size config is
recorded, nor a complete one of ``cpu``; results/README.md says why and what the ``cpu``
runs would cost. Presets: ``tiny`` (seconds, tests), ``cpu`` (2 x 64, 2,000 steps, batch 32,
every 4th length evaluated: the CPU reproduction of scripts/reproduce_cpu.sh), ``stream``.

``stream``: the language-model-style check (validation loss versus evaluation length):
next-token prediction on ``recall_stream`` (lengthgen/tasks/recall_stream.py: key-value
pairs whose keys recur, loss on every predictable value), trained on streams of 1..32 pairs
(at most 65 tokens, T = 64) and evaluated on 1..256 pairs (8T). Each evaluation row has the
mean cross-entropy per supervised token (``loss``) beside the accuracies:
    python scripts/sweep.py --config=softplus_recall:stream,cpu --dir=results/softplus_stream_cpu \
        --encodings=rope --normalizers=softmax,softplus_reweight --seeds=3,4,5 --vmap_seeds
"""

from lengthgen.configs import apply_presets, reproduction_config

PRESETS = ["", "tiny", "cpu", "stream", "stream,tiny"]
STREAM_TRAIN_PAIRS = 32    # at most 65 tokens in training
STREAM_EVAL_PAIRS = 256    # 8x


def stream(c) -> None:
  """The language-model-style check: loss versus length on the recall stream."""
  c.task = "recall_stream"
  c.task_options = {"num_keys": 256, "num_values": 16, "repeats": 2}
  c.train.update(min_length=1, max_length=STREAM_TRAIN_PAIRS)
  c.eval.update(min_length=1, max_length=STREAM_EVAL_PAIRS)


def get_config(arg: str = ""):
  c = reproduction_config(
      "recall", {"num_keys": 512, "num_values": 16},
      model=dict(num_layers=4, width=128, num_heads=4, positional="rope",
                 normalizer="softplus_reweight"),
      train=dict(steps=5000, batch_size=64, learning_rate=5e-4, warmup_steps=200,
                 min_length=1, max_length=31),
      eval=dict(min_length=1, max_length=255))
  return apply_presets(c, arg, __file__, {"stream": stream},
                       cpu=dict(steps=2000, eval_stride=4))
