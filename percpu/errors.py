"""The one error type the command line turns into a single line and exit code 2."""


class UsageError(Exception):
    """Bad input: the message names the problem and the fix, in one line."""
