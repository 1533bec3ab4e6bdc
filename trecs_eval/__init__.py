"""trecs-eval: evaluation and benchmarking for grounded text-to-image generation (TReCS and peers)."""

__version__ = "0.1.0"
