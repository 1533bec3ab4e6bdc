"""Built-in systems. Names map to ``"module:Class"`` strings so the registry imports them lazily."""

BUILTIN_GENERATORS: dict[str, str] = {}
