"""bnconform: a diagnostic and conformance test suite for BatchNorm implementations."""

__version__ = "0.1.0"
