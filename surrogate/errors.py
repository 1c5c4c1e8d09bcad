"""The one exception type for bad user input.

Everything a user can get wrong (a file, a key, a shape, a value) raises
`InputError` with a message naming what was wrong and what was expected. The CLI
turns it into a one-line message and exit code 2; anything else is a bug.
"""


class InputError(ValueError):
    """Bad input from the user: a file, key, field, shape or parameter."""
