"""Synthesizers: label canvas -> image (collage, spade, palette)."""
