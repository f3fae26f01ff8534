"""`bnconform bench`: time a BatchNorm against torch's own and against the memory-bandwidth limit.

Layout: command (the CLI subcommand) runs bench (one run, step by step): conform (the quick
forward check first), shapes (which inputs), model + bandwidth (bytes a pass moves, the
ceiling), memory (peak and growth), cases (the timed callables), timing + suite
(pytest-benchmark does the timing), compare (against a saved run), results (plain data)
and table (terminal, Markdown and HTML).
"""
