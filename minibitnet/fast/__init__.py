"""The fast path: typed Python kernels compiled by mypyc at install time."""
