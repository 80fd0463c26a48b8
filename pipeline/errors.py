"""Exceptions for user mistakes: each names the file, the problem and the fix.

The CLI maps every ``LucrError`` to a one-paragraph message and exit code 2 (no
traceback unless ``--debug``); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class LucrError(Exception):
    """Base class of every error caused by the user's input or options."""

    exit_code = 2

    def __init__(self, problem: str, *, path: str | Path | None = None, fix: str | None = None):
        self.path = None if path is None else str(path)
        self.problem = problem
        self.fix = fix
        parts = [f"{self.path}: {problem}" if self.path else problem]
        if fix:
            parts.append(f"Fix: {fix}")
        super().__init__(" ".join(parts))


class ConfigError(LucrError):
    """The run config is malformed or names an invalid option."""


class InputFileError(LucrError):
    """An input file is missing or cannot be read in the expected format."""


class MissingCRSError(InputFileError):
    """A raster or vector layer has no coordinate reference system."""


class NoOverlapError(LucrError):
    """Admin units and the land-cover grid do not overlap."""


class CoefficientTableError(LucrError):
    """A coefficient table is malformed (duplicate or non-numeric codes, missing fields)."""


class UnknownClassError(LucrError):
    """The land cover holds codes that the coefficient table lacks."""


class OutputError(LucrError):
    """An output cannot be written where asked."""


class OutputExistsError(OutputError):
    """An output would overwrite an existing file and ``--overwrite`` was not given."""


class AnalysisError(LucrError):
    """A time series or a set of units cannot be analysed as asked (too short, constant, mismatched ids)."""
