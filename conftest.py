# Makes the repository root importable for tests (local/ scripts, svslm) without installation.
