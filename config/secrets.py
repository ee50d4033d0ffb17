"""A string type for passwords, keys and tokens that never prints its value."""

from __future__ import annotations

MASK = "********"


class Secret:
    """A secret value that prints masked; call ``reveal()`` at the point of use."""

    __slots__ = ("_value",)

    def __init__(self, value: str = "") -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return f"Secret({self})"

    def __str__(self) -> str:
        return MASK if self._value else "(not set)"

    def __reduce__(self):
        # Pickling would write the value somewhere unmasked, so it is refused.
        raise TypeError("Secret values cannot be pickled")
