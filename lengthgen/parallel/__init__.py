"""Scaling out on JAX's own runtime: data parallel / FSDP meshes, multi-host, ring attention.

    from lengthgen import parallel
    mesh = parallel.make_data_mesh()                 # every device on the "data" axis
    out = parallel.ring_attention(q, k, v, mesh=parallel.make_seq_mesh(), causal=True)
"""

from lengthgen.parallel.distributed import initialize_from_env, is_main_process
from lengthgen.parallel.mesh import (PARAM_SHARDINGS, global_batch, make_data_mesh,
                                     replicated, state_shardings)
from lengthgen.parallel.ring_attention import make_seq_mesh, ring_attention

__all__ = ["PARAM_SHARDINGS", "global_batch", "initialize_from_env", "is_main_process",
           "make_data_mesh", "make_seq_mesh", "replicated", "ring_attention", "state_shardings"]
