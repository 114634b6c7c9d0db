"""The one error type for user mistakes: raised where the mistake is found,
turned into one line and an exit status in one place (the CLI's main)."""


class MsprofError(Exception):
    """A mistake the user can fix: bad input, missing permission, bad profile."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code
