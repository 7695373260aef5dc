"""Sequence data: padded-with-mask tensors, Avalanche datasets and built-in benchmarks."""
