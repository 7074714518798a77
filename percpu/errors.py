"""The errors the command line turns into one line, and the exit codes every command uses.

| code | meaning |
| --- | --- |
| 0 | done |
| 1 | the run found what it looks for: a checker violation, a failed check, failed sweep points |
| 2 | bad input (UsageError): the message names the problem and the fix; nothing was written |
| 3 | internal error: a bug in percpu (or its C++ engine), not in the input |
| 130 | interrupted (Ctrl-C or SIGTERM) |
"""

EXIT_OK = 0
EXIT_FOUND = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130

# Set to 1 to see the traceback of an internal error.
TRACEBACK_ENV = "PERCPU_TRACEBACK"


class UsageError(Exception):
    """Bad input: the message names the problem and the fix, in one line."""


def internal_error_line(prog: str, exc: BaseException) -> str:
    """The one line an internal error prints: what failed, that it is a bug, how to see more."""
    what = " ".join(str(exc).split()) or "(no message)"
    return (f"{prog}: internal error (a bug in percpu, not in your input): "
            f"{type(exc).__name__}: {what}; rerun with {TRACEBACK_ENV}=1 for the traceback "
            "and report it with the command line")
