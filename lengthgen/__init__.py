"""lengthgen: length generalization of transformers in JAX.

Subpackages: ``positional`` (encodings), ``attention`` (reference attention and dispatch),
``kernels`` (Pallas flash attention), ``tasks`` (algorithmic tasks); modules ``model``,
``train``, ``evaluate``, ``data``, ``checkpointing``, ``metrics``, ``plotting``.
"""

__version__ = "0.1.0"
