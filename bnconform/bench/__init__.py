"""`bnconform bench`: time a BatchNorm against torch's own and against the memory-bandwidth limit.

Layout: shapes (which inputs), cases (the timed passes), suite + timing (pytest-benchmark
does the timing), bandwidth (bytes model and ceilings), memory (peak and growth), conform
(the quick forward check run first), compare (regressions against a saved run), table
(terminal, Markdown and HTML rendering) and command (the CLI subcommand).
"""
