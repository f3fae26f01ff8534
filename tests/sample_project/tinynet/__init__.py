"""A small project that owns its normalization layers (bnconform's sample project)."""
