"""Deliberately broken BatchNorm implementations, one bug per module (see README.md).

reference.py and keras_reference.py are correct; every other module is a copy of one of
them with a single bug, and its docstring names the finding code it must trigger.
"""
