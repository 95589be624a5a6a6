"""The run directory: its schema, meta.json, the one reader, and resuming."""
