"""Where a run's work runs: one interface (:class:`Engine`), two engines.

* ``local`` (:mod:`trecs_eval.execution.local`): this process, exactly the single-machine code path.
* ``ray`` (:mod:`trecs_eval.execution.ray_engine`): generation sharded over Ray actors (one
  generator, hence one model load, per actor) and feature extraction over an actor pool per
  extractor; the driver stays the only writer of the feature cache and the run directory's
  summary files, and the files the workers write are the local runner's, written by the same
  functions.

The engine is not part of a run's meaning (it is not hashed): both give bit-identical features
and hence identical results; ``results.json`` records which engine ran, the cluster's size and
the start-up time (``execution``), next to the per-stage ``timings``.
:mod:`trecs_eval.execution.moments` holds the exactly mergeable FID statistics (Chan's formula)
for reductions that cannot gather the features.
"""

from __future__ import annotations

from trecs_eval.execution.base import Engine, GeneratorRecipe
from trecs_eval.execution.select import make_engine

__all__ = ["Engine", "GeneratorRecipe", "make_engine"]
