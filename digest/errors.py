"""Exception types. Each carries one sentence for the operator: what went wrong and the fix.

Library code raises these; only cli/base.py turns them into click exceptions and exit codes.
"""


class DigestError(Exception):
    """Base class: str(error) is a complete, user-facing sentence."""

    @property
    def problems(self) -> list[str]:
        """One sentence per problem (a ConfigError may hold several)."""
        return [str(self)]


class ConfigError(DigestError):
    """The configuration is invalid. Holds every problem found, not just the first."""

    def __init__(self, problems: list[str]):
        self._problems = list(problems)
        super().__init__("\n".join(self._problems))

    @property
    def problems(self) -> list[str]:
        return self._problems

    def __reduce__(self):  # survives pickling (ranking worker processes raise it)
        return type(self), (self._problems,)


class FetchError(DigestError):
    """A feed could not be downloaded."""


class ParseError(DigestError):
    """A feed was downloaded but yielded no entries."""


class StoreError(DigestError):
    """The database could not be opened or is from an incompatible version."""
