"""Benchmark of Attention Atlas: what the app costs on top of the bare model (`python -m bench.run`)."""
