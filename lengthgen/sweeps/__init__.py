"""Sweeps: a grid of ``lengthgen-train`` runs in one directory, on a chosen engine.

``grid`` (the points, their commands, what is left to run), ``engine`` (the interface, one
point's process, the local engine), ``ray_engine`` and ``slurm`` (Ray tasks; a SLURM job
array through submitit), ``driver`` (the resumable run, progress, failures), ``report``
(summary tables, accuracy-versus-length figures, the leaderboard) and ``cli`` (the
``lengthgen-sweep`` command). Nothing else in lengthgen imports this package.

    from lengthgen import sweeps
    points = sweeps.grid_points(["nope", "rope"], ["softmax"], ["copy"], [0, 1])
    sweeps.run_sweep("/tmp/sweep", "demo:tiny", points, sweeps.LocalEngine(parallel=2),
                     extra=["--config.train.steps=50"])
"""

from lengthgen.sweeps.driver import SweepError, SweepResult, run_sweep
from lengthgen.sweeps.engine import Engine, LocalEngine, Outcome
from lengthgen.sweeps.grid import Point, grid_points, plan
from lengthgen.sweeps.report import summarize

__all__ = ["Engine", "LocalEngine", "Outcome", "Point", "SweepError", "SweepResult",
           "grid_points", "plan", "run_sweep", "summarize"]
