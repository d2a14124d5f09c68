"""Output heads: map the trunk's final hidden states to per-position logits."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


class VocabHead(nn.Module):
  """A linear readout over the vocabulary (untied from the input embedding)."""

  vocab_size: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, h_BTW: jax.Array) -> jax.Array:
    return nn.Dense(self.vocab_size, dtype=self.dtype, name="logits")(h_BTW).astype(jnp.float32)


HEADS = {"vocab": VocabHead}
