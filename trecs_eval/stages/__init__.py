"""One module per feature space: the registered metrics computed in that space.

``inception`` (FID, KID, IS, FID_inf), ``clip`` (CLIPScore, CLIP-S, R-precision), ``dinov2``
(FD-DINOv2), ``cmmd`` (CMMD), ``prdc`` (precision, recall, density, coverage in any vector space),
``segmentation`` (trace adherence of any system on a segmenter's map: ``seg_*``, ``trace_hit_rate``),
``canvas`` (label-canvas metrics of systems that draw canvases), ``trace_local`` (trace-local
CLIP: each utterance against the crop where its trace points, in the ``clip_crops`` space). Each
module declares its metrics as
:class:`trecs_eval.metrics.types.Metric` objects; :mod:`trecs_eval.metrics.registry` lists them
and :mod:`trecs_eval.measure` computes them, for runs and ``trecs-eval metrics`` alike.
"""
