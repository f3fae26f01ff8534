"""Hostile and unusual classes: each tries to end, hang or fool the run (issue 9).

Every module here is imported only as a check target, in a worker process: several of them
end the interpreter at import.
"""
