"""charter benchmark harness: run with `python bench/run.py --suite engine`."""
