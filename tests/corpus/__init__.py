"""Deliberately broken BatchNorm implementations, one bug per module (see README.md).

reference.py and keras_reference.py are correct; every other module subclasses one of them
and overrides only what its single bug needs, and its docstring names the finding code it
must trigger.
"""
