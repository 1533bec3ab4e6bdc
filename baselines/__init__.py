"""Built-in systems. Names map to ``"module:Class"`` strings so the registry imports them lazily.

Importing this package registers every entry in :data:`BUILTIN_GENERATORS` into
:data:`trecs_eval.generation.protocol.GENERATORS` (no model code is imported until a system
is used). Third-party systems register through the ``trecs_eval.generators`` entry point.
"""

from trecs_eval.generation.protocol import GENERATORS

BUILTIN_GENERATORS: dict[str, str] = {
    "folder": "baselines.folder:FolderGenerator",
    "real": "baselines.real:RealGenerator",
    "retrieval": "baselines.retrieval:RetrievalGenerator",
    "noise": "baselines.noise:NoiseGenerator",
    "mean-color": "baselines.noise:MeanColorGenerator",
    "diffusers": "baselines.diffusers_t2i:DiffusersGenerator",
    "gligen": "baselines.gligen:GligenGenerator",
    "trecs": "reference_pipeline.generator:TReCSGenerator",
}


def register_builtins() -> None:
    """Register the built-in systems (idempotent: the same string twice is not a conflict)."""
    for name, target in BUILTIN_GENERATORS.items():
        GENERATORS.register(name, target)


register_builtins()
