"""The package's own exceptions: each message says what went wrong and what to do (chapter 9).

Every expected failure of the helpers is one of these, so a notebook can catch them and the
command line can print them as one line with a distinct exit status (``exit_code``). Each also
derives from the built-in exception it refines (``OSError``, ``ValueError``, ...), so code that
catches those keeps working.
"""

from __future__ import annotations


class MnistCourseError(Exception):
    """An expected failure with a message that says what to do (chapter 9). ``python -m mnist_course`` exits with 1."""

    exit_code = 1


class DataError(MnistCourseError, OSError):
    """The data folder or an output file cannot be used as it is (chapter 1). Exit status 3."""

    exit_code = 3


class CheckpointError(MnistCourseError, ValueError):
    """A checkpoint that cannot be read, or that does not fit what it is loaded into (chapter 9). Exit status 4."""

    exit_code = 4


class TrainingDiverged(MnistCourseError, FloatingPointError):
    """The training loss became NaN or infinite, or grew far above chance level (chapter 4). Exit status 5."""

    exit_code = 5


class DigitImageError(MnistCourseError, ValueError):
    """An image that cannot be turned into one MNIST-style digit, with the reason (chapter 10). Exit status 6."""

    exit_code = 6


class InputError(MnistCourseError, ValueError):
    """Data that breaks a rule of the helpers: labels outside 0-9, empty data, wrong shapes (chapter 6)."""

    exit_code = 1


class ShapeError(MnistCourseError, RuntimeError):
    """A layer that cannot take the shape it receives; ``rows`` holds the layers traced before it (chapter 5)."""

    exit_code = 1

    def __init__(self, message: str, rows=None):
        super().__init__(message)
        self.rows = rows if rows is not None else []


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name if it has none (chapter 9)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
