"""Built-in spec files (TOML). This folder ships as the package `bnconform.builtin_specs`."""
