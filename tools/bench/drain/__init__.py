"""Parts of ``tools/bench/drain_bench.py`` (the method is that file's
docstring)."""
