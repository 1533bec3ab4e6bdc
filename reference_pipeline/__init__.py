"""The reference TReCS pipeline: Tag, Retrieve, Compose, Synthesize."""
