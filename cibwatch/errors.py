"""Errors a user can act on. The CLI prints their message on one line and exits 2."""


class CibwatchError(Exception):
    """Base class: the message names the file (and row) and what is wrong."""


class InputError(CibwatchError):
    """A dataset file cannot be read at all (wrong format, truncated, no header)."""


class ResultsError(CibwatchError):
    """A results folder or labels file is missing or malformed."""
