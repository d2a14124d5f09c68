"""Data-parallel plumbing of ``lengthgen.train``: shard the state, assemble global batches.

Used only when the run sees more than one device (``jax.device_count() > 1``); a single-device
run never touches it, so its numbers are exactly those of the plain loop.
"""

from __future__ import annotations

import dataclasses

import jax

from lengthgen.parallel import mesh as mesh_lib


@dataclasses.dataclass(frozen=True)
class DataParallel:
  """A "data" mesh over every device, the state's shardings and the batch sharding.

  Attributes:
    mesh: the 1-D "data" mesh.
    mode: ``"replicated"`` or ``"fsdp"`` (``mesh_lib.PARAM_SHARDINGS``).
    model_axis: the state and batch carry a leading seed axis (``num_seeds`` > 1).
  """

  mesh: jax.sharding.Mesh
  mode: str
  model_axis: bool

  @classmethod
  def create(cls, mode: str, *, model_axis: bool) -> "DataParallel":
    return cls(mesh_lib.make_data_mesh(), mode, model_axis)

  def state_shardings(self, state):
    return mesh_lib.state_shardings(state, self.mesh, self.mode, model_axis=self.model_axis)

  def put_state(self, state):
    """The state laid out on the mesh (every process holds the same initial values)."""
    return jax.device_put(state, self.state_shardings(state))

  def put_replicated(self, tree):
    return jax.device_put(tree, mesh_lib.replicated(self.mesh))

  def inputs(self, host_inputs):
    return mesh_lib.global_batch(host_inputs, self.mesh, model_axis=self.model_axis)

  def jit_step(self, step, state, *, donate: bool = True):
    """``step(state, inputs, key)`` jitted so the state keeps its layout; metrics replicated."""
    return jax.jit(step, donate_argnums=0 if donate else (),
                   out_shardings=(self.state_shardings(state), mesh_lib.replicated(self.mesh)))

  def gather(self, tree):
    """Every leaf fully replicated (for evaluation and host reads)."""
    return jax.jit(lambda x: x, out_shardings=mesh_lib.replicated(self.mesh))(tree)
