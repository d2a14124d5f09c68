"""Positional encodings, swappable by name, acting through three hooks (see ``base``).

    import lengthgen.positional as pe
    enc = pe.get("rope", base=10000.0, layout="half")
    pe.alibi_slopes(12); pe.rope_inv_frequencies(64)
"""

from __future__ import annotations

from lengthgen.positional.absolute import Learned, Sinusoidal, sinusoidal_table
from lengthgen.positional.alibi import Alibi, alibi_slopes
from lengthgen.positional.base import Encoding, NoPE, Rotation
from lengthgen.positional.abacus import Abacus, abacus_positions
from lengthgen.positional.clex import Clex
from lengthgen.positional.fire import Fire
from lengthgen.positional.rope_scaled import (RopeNTK, RopePI, RopeYaRN, ntk_scaled_base,
                                              yarn_attention_factor, yarn_inv_frequencies)
from lengthgen.positional.t5 import T5, t5_relative_position_bucket
from lengthgen.positional.sampling import POSITION_SAMPLERS, resolve_sampler, sample_positions
from lengthgen.positional.rope import Rope, apply_rope, rope_inv_frequencies, rotate

ENCODINGS = {
    "nope": NoPE,
    "sinusoidal": Sinusoidal,
    "learned": Learned,
    "t5": T5,
    "alibi": Alibi,
    "fire": Fire,
    "rope": Rope,
    "rope_pi": RopePI,
    "rope_ntk": RopeNTK,
    "rope_yarn": RopeYaRN,
    "clex": Clex,
    "abacus": Abacus,
}


def get(name: str, **options) -> Encoding:
  """Builds the encoding ``name`` with ``options``; unknown names list the valid ones."""
  if name not in ENCODINGS:
    raise ValueError(
        f"unknown positional encoding {name!r}; valid encodings: {', '.join(ENCODINGS)}")
  try:
    return ENCODINGS[name](**options)
  except TypeError as e:
    raise ValueError(f"positional encoding {name!r}: bad options {options}: {e}") from None


__all__ = [
    "ENCODINGS", "POSITION_SAMPLERS", "Encoding", "resolve_sampler", "sample_positions", "Rotation", "get", "alibi_slopes", "apply_rope",
    "rope_inv_frequencies", "rotate", "sinusoidal_table", "t5_relative_position_bucket",
    "abacus_positions", "ntk_scaled_base", "yarn_attention_factor", "yarn_inv_frequencies",
]
