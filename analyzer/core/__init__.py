"""The pure core: rule model, PromQL rendering, judge, upgrade state machine, value types.

Nothing here does I/O or reads the clock: time and data come in as arguments, decisions and
actions go out as plain data. import-linter keeps it that way (pyproject.toml).
"""
