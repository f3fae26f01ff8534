"""Errors that end a run before any check: bad input at the boundary (exit code 2)."""

from __future__ import annotations


class UsageError(Exception):
    """A problem with what the user asked for; the CLI prints it as one line and exits 2."""

    exit_code = 2


class TargetError(UsageError):
    """The TARGET string names nothing loadable, or something that is not a BatchNorm class."""


class ConstructionError(UsageError):
    """The target's constructor needs arguments bnconform cannot fill (suggest --init)."""


class SpecError(UsageError):
    """A spec file is missing or malformed; the message names the file, line and key."""


class UserCodeError(Exception):
    """The user's code raised, hung or produced NaN while a probe drove it.

    Not a usage error: the runner turns it into a finding and the run goes on.
    """

    VERBS = {"raised": "raised", "timeout": "hung", "nan": "gave non-finite values",
             "type": "returned the wrong type", "shape": "returned the wrong shape"}

    def __init__(self, what: str, detail: str, kind: str = "raised") -> None:
        super().__init__(f"{what} {self.VERBS.get(kind, kind)}: {detail}")
        self.what = what
        self.detail = detail
        self.kind = kind  # a key of VERBS
