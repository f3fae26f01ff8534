"""Package discovery only (everything else is in pyproject.toml).

pyproject's declarative `packages.find` cannot also map the top-level specs/ folder to
bnconform.builtin_specs, so discovery lives here: every bnconform* package found on disk,
plus the mapped specs package. tests/test_install.py checks the built wheel.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["bnconform", "bnconform.*"]), "bnconform.builtin_specs"])
