"""One module per feature space: the registered metrics computed in that space.

``inception`` (FID, KID, IS), ``clip`` (CLIPScore, CLIP-S, R-precision), ``canvas`` (label-canvas
metrics of systems that draw canvases). Each module declares its metrics as
:class:`trecs_eval.metrics.types.Metric` objects; :mod:`trecs_eval.metrics.registry` lists them
and :mod:`trecs_eval.measure` computes them, for runs and ``trecs-eval metrics`` alike.
"""
