"""The one error type the library raises for problems a user can fix."""

from __future__ import annotations


class RareEventError(ValueError):
    """A data or usage problem, reported to the user as one line.

    The CLI turns it into ``error: <message>`` on stderr and exit code 2.
    ``hint`` is an optional suggestion appended after the message.
    Messages and hints speak library terms: ``param`` names the parameter
    the message is about; when the message begins with it (as in
    ``margin must be ...``) the CLI names its option instead. A parameter
    named anywhere else is marked in backticks, alone or with the value to
    pass (``name it with `time` ``, ``use `fill=drop` ``), and the CLI
    rewrites it as ``--time``, ``--fill drop``.
    A ``ValueError``, as scikit-learn raises for bad parameters.

    Parameters
    ----------
    message : str
        What is wrong, in one line: the file, the column and the line where
        there are any.
    hint : str, optional
        How to fix it.
    param : str, optional
        The parameter the message is about.

    Examples
    --------
    >>> from rareevent import RareEventDetector, RareEventError
    >>> try:
    ...     RareEventDetector(margin=0).check_params()
    ... except RareEventError as error:
    ...     print(error.param, "|", error)
    margin | margin must be above 0 and at most 1000, got 0
    """

    def __init__(
        self, message: str, hint: str | None = None, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.param = param

    def __reduce__(self) -> tuple[type, tuple[str, str | None]]:
        """Keep the hint when the error crosses from a worker process (``score --jobs``)."""
        return (type(self), (self.message, self.hint))

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} (hint: {self.hint})"
        return self.message
