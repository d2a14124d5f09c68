"""``flax.nnx`` counterparts of the parameterized pieces of ``lengthgen``.

Each module owns the same parameters, under the same names, as its linen module and calls
the same pure functions of ``lengthgen.positional`` / ``lengthgen.attention``, so on shared
weights it computes the same outputs (tested). ``Cls.from_linen(linen_module, params)``
converts a linen module and its parameters (a checkpoint's sub-tree); ``m.linen_params()``
is the way back. The fixed pieces (sinusoidal, ALiBi, RoPE and its scaled forms, the
normalizers, masks, bias specs) are pure functions and work in nnx as they are.

| nnx module | linen module | encoding hook |
|---|---|---|
| ``LearnedEmbedding`` | ``positional.absolute.LearnedEmbedding`` | ``learned`` and ``abacus`` embedding |
| ``RelativeBiasModule`` | ``positional.t5.RelativeBiasModule`` | ``t5`` bias |
| ``FireBias`` | ``positional.fire.FireBias`` | ``fire`` bias |
| ``ClexRotary`` | ``positional.clex.ClexRotary`` | ``clex`` rotary |
| ``MultiHeadAttention`` | ``attention.layer.MultiHeadAttention`` | the layer (ssmax, length temperature, QK-norm) |

Shapes: B batch, T queries, S keys, H heads, D head dim, W width.

    from flax import nnx
    import jax.numpy as jnp
    import lengthgen.nnx as lnnx
    import lengthgen.positional as pe
    from lengthgen.attention.layer import AttentionSpec

    rngs = nnx.Rngs(0)
    spec = AttentionSpec(num_heads=4, head_dim=8, normalizer="ssmax", causal=True)
    layer = lnnx.MultiHeadAttention(spec, width=32, rngs=rngs)
    fire = lnnx.FireBias(num_heads=4, rngs=rngs)                   # dense [B, H, T, S]
    clex = lnnx.ClexRotary(pe.get("clex", t_max=2, train_length=8), head_dim=8, rngs=rngs)
    positions_BT = jnp.broadcast_to(jnp.arange(10), (2, 10))
    y_BTW, _ = layer(jnp.ones((2, 10, 32)), positions_BT=positions_BT,
                     rotation=clex(positions_BT), bias=fire(positions_BT, positions_BT),
                     lengths=jnp.array([10, 7]))                    # [2, 10, 32]

Converters, from a linen module and its parameters (``variables["params"]`` of its
``init``, or its sub-tree of a model's, e.g. ``params["block_0"]["attention"]``):

    LearnedEmbedding.from_linen(module, params)       # also the abacus encoding's module
    RelativeBiasModule.from_linen(module, params)
    FireBias.from_linen(module, params)
    ClexRotary.from_linen(module, params, *, rngs=None)
    MultiHeadAttention.from_linen(module, params)
    m.linen_params() -> dict                          # back to a linen params tree
    load_linen_params(m, params)                      # in place, into an existing module

Importing ``lengthgen.positional`` or ``lengthgen.attention`` does not import this package.
"""

from __future__ import annotations

from lengthgen.nnx.absolute import LearnedEmbedding
from lengthgen.nnx.attention import MultiHeadAttention
from lengthgen.nnx.clex import ClexRotary
from lengthgen.nnx.convert import linen_params, load_linen_params
from lengthgen.nnx.fire import FireBias
from lengthgen.nnx.t5 import RelativeBiasModule

__all__ = ["ClexRotary", "FireBias", "LearnedEmbedding", "MultiHeadAttention",
           "RelativeBiasModule", "linen_params", "load_linen_params"]
