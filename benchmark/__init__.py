"""The harness: CLI, matrices, runner, training loop, data, metrics and the run store."""

__version__ = "0.1.0"
