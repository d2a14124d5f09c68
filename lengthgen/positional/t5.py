"""T5 relative position bias (Raffel et al. 2020), as used by Kazemnejad et al. 2023.

A learned scalar per head and distance bucket is added to the attention scores. The bucket
function, ``t5_relative_position_bucket`` (the original Mesh TensorFlow one), is defined with
the bias spec it indexes in ``lengthgen.attention.bias`` and re-exported here.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn

from lengthgen.attention.bias import RelativeBias, t5_relative_position_bucket
from lengthgen.positional.base import Encoding

__all__ = ["RelativeBiasModule", "T5", "t5_relative_position_bucket"]


class RelativeBiasModule(nn.Module):
  """The learned [H, num_buckets] table, returned as a ``RelativeBias`` spec.

  Attributes:
    num_heads: H.
    bidirectional: buckets tell keys after the query from keys before it (encoder).
    num_buckets, max_distance: T5's bucketing (32 and 128).
    init_std: the table starts as normal(init_std); 0.02 by default, W^-0.5 under the
      ``t5`` block (HuggingFace T5's ``_init_weights``, set by ``lengthgen.model``).
  """

  num_heads: int
  bidirectional: bool
  num_buckets: int = 32
  max_distance: int = 128
  init_std: float = 0.02

  @nn.compact
  def __call__(self, q_positions_BT, k_positions_BS, *, train: bool = False):
    del q_positions_BT, k_positions_BS, train
    table = self.param("table", nn.initializers.normal(self.init_std),
                       (self.num_heads, self.num_buckets))
    return RelativeBias(table, bidirectional=self.bidirectional, num_buckets=self.num_buckets,
                        max_distance=self.max_distance)


@dataclasses.dataclass(frozen=True)
class T5(Encoding):
  """T5 bucketed relative bias.

  ``share_bias`` (default, as T5 and HuggingFace's T5, which Kazemnejad et al. use) computes
  one table in the first layer and adds it in every layer; ``share_bias=False`` gives each
  layer its own table.
  """

  num_buckets: int = 32
  max_distance: int = 128
  share_bias: bool = True
  name = "t5"

  def __post_init__(self):
    if self.num_buckets < 2 or self.max_distance <= self.num_buckets // 2:
      raise ValueError(f"t5: need num_buckets >= 2 and max_distance > num_buckets // 2; got "
                       f"num_buckets={self.num_buckets}, max_distance={self.max_distance}")

  def bias(self, num_heads: int, *, causal: bool) -> nn.Module:
    return RelativeBiasModule(num_heads, bidirectional=not causal,
                              num_buckets=self.num_buckets, max_distance=self.max_distance)
