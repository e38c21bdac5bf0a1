"""The training Job (trusted code, ``python -m podium.training``): trains a model with one of Podium's algorithms."""
