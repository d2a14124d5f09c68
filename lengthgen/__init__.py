"""lengthgen: length generalization of transformers in JAX.

Subpackages: ``positional`` (encodings), ``attention`` (reference attention and dispatch),
``kernels`` (Pallas flash attention), ``tasks`` (algorithmic tasks), ``nnx`` (flax.nnx
modules), ``configs`` (experiment records), ``sweeps`` (grids on local processes, Ray or
SLURM); modules ``model``, ``train``, ``evaluate``, ``data``, ``checkpointing``, ``metrics``,
``plotting``, ``analysis``, ``cli`` (``lengthgen-train``). Importing
``lengthgen``, ``lengthgen.positional`` or ``lengthgen.attention`` costs about what jax and
flax cost: the kernels, CLEX's ODE solver and the training stack load on first use.

Shape suffixes in names: B batch, T queries, S keys, H heads, D head dim, F rotary
frequencies (D // 2 or fewer), W width, V vocabulary.
"""

__version__ = "0.1.0"
