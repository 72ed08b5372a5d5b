"""The base every config model shares: strict keys, resmo's camelCase names, null = default.

resmo decodes YAML with Go's yaml package, where ``key:`` with no value (``layout: # optional``)
leaves the zero value; its example configs rely on that. Here an explicit null on a key that has
a default means "use the default", so those configs load unchanged. Numbers given where a string
is expected (``name: 123``) become strings, as Go's decoder does.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from eventpipe.core import regex


class Model(BaseModel):
    """Base config model: unknown keys are errors, fields are read by alias or by name."""

    model_config: ClassVar[ConfigDict] = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        coerce_numbers_to_str=True,
        frozen=True,
        use_attribute_docstrings=False,
    )

    @model_validator(mode="before")
    @classmethod
    def _before(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = cls._prepare(data)
            if None in data.values():
                data = {k: v for k, v in data.items() if v is not None or not cls._has_default(k)}
        return data

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Hook for subclasses to reshape or check raw input before field validation."""
        return data

    @classmethod
    def _has_default(cls, key: str) -> bool:
        for name, field in cls.model_fields.items():
            if key in (name, field.alias):
                return not field.is_required()
        return False


def check_pattern(pattern: str, *, at: tuple[str, ...] = ()) -> str:
    """Return `pattern` if RE2 accepts it (`eventpipe.core.regex`), else raise a pydantic custom
    error (reported as ``invalid regular expression ...`` at the field, or below it by `at`)."""
    try:
        regex.check(pattern)
    except regex.RegexError as exc:
        raise PydanticCustomError(
            "regex",
            "invalid regular expression '{pattern}': {reason}",
            {"pattern": pattern, "reason": str(exc), "at": at},
        ) from None
    return pattern
