"""The one family of user-facing errors.

The core raises :class:`InputError` for anything the *user* got wrong (a
file, a column, an option).  The message is written for a person who is
not a programmer: it says what is wrong and how to fix it.  The app shows
it next to the control that caused it (``field``); the CLI prints it and
exits with status 2.  Programming errors stay ordinary exceptions.
"""
from __future__ import annotations


class InputError(ValueError):
    """A problem with what the user supplied.

    Parameters
    ----------
    message : str
        A complete sentence a non-programmer understands, ending with how
        to fix the problem.
    field : str, optional
        The option or control that caused it (``"label"``, ``"file"``,
        ``"sensitive"``, ``"tolerance"`` ...), so a UI can show the message
        next to that control.
    column : str, optional
        The offending column, when there is one.
    value : object, optional
        The offending value, when there is one.
    """

    def __init__(self, message: str, *, field: str | None = None,
                 column: str | None = None, value=None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.column = column
        self.value = value

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


class ExportUnavailable(InputError):
    """A chart image or the PDF report needs Debian's chromium, which is not
    installed or cannot start.  The HTML report and interactive HTML charts
    work without it.

    Parameters
    ----------
    message : str
        One line: what needs the browser and how to get it.
    """

    def __init__(self, message: str):
        super().__init__(message, field="export")


def quote_list(values, limit: int = 12) -> str:
    """Render values as a readable, quoted, comma separated list (each as
    :func:`~fairness_core.formatting.short` writes it: a message is page
    and terminal text)."""
    from .formatting import short
    values = [str(v) for v in values]
    shown = ", ".join(repr(short(v)) for v in values[:limit])
    if len(values) > limit:
        shown += f", ... ({len(values) - limit} more)"
    return shown
