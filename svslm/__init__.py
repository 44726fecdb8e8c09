"""svslm: singing voice synthesis with a speech language model."""

__version__ = "0.1.0"
