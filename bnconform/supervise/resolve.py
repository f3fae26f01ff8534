"""Resolve a target in a child process: import it and map its constructor, nothing else.

The pytest plugin needs a bad target to be one collection error, but must not import the
user's code into the pytest process (a crash at import would take pytest down with it).
Usage: python -m bnconform.supervise.resolve JSON  ->  exit 0, or exit 2 with one line.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    from bnconform.construct import Builder
    from bnconform.errors import UsageError
    from bnconform.spec import load_spec
    from bnconform.target import load_target

    job = json.loads(argv[0])
    try:
        load_spec(job["spec"])
        Builder(load_target(job["target"]), job.get("init"))
    except UsageError as error:
        print(str(error), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
