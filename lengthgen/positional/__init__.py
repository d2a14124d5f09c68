"""Positional encodings, swappable by name, acting through their hooks (see ``base``).

    import lengthgen.positional as pe
    enc = pe.get("rope_yarn", scale=4.0, train_length=64)
    q_BTHD, k_BSHD = enc.rotate_qk(q_BTHD, k_BSHD, q_positions_BT, k_positions_BS)
    pe.alibi_slopes(12); pe.rope_inv_frequencies(64)

``Encoding.rotate_qk`` (pure; ``length``, ``train``, ``rng`` and CLEX's ``params`` explicit)
applies everything a rotary encoding means and equals the model's rotary path; the pure
rotations behind it (``fixed_rotation``, ``interpolated_rotation``, ``dynamic_ntk_rotation``,
``clex_rotation``) are what the linen ``rotary(head_dim)`` modules wrap. ``apply_rope`` alone
rotates by given frequencies only (no attention factor).
"""

from __future__ import annotations

from lengthgen.positional.absolute import Learned, Sinusoidal, sinusoidal_table
from lengthgen.positional.alibi import Alibi, alibi_slopes
from lengthgen.positional.base import Encoding, NoPE, Rotation
from lengthgen.positional.abacus import Abacus, abacus_positions
from lengthgen.positional.clex import Clex, clex_rotation
from lengthgen.positional.fire import Fire
from lengthgen.positional.relative import Relative, relative_logits
from lengthgen.positional.rope_scaled import (RopeNTK, RopePI, RopeYaRN, dynamic_ntk_rotation,
                                              interpolated_rotation, ntk_scaled_base,
                                              yarn_attention_factor, yarn_inv_frequencies)
from lengthgen.positional.t5 import T5, t5_relative_position_bucket
from lengthgen.positional.sampling import POSITION_SAMPLERS, resolve_sampler, sample_positions
from lengthgen.positional.rope import (Rope, apply_rope, fixed_rotation, rope_inv_frequencies,
                                       rotate)

ENCODINGS = {
    "nope": NoPE,
    "sinusoidal": Sinusoidal,
    "learned": Learned,
    "t5": T5,
    "alibi": Alibi,
    "fire": Fire,
    "relative": Relative,
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
    "clex_rotation", "relative_logits", "dynamic_ntk_rotation", "fixed_rotation", "interpolated_rotation",
]
