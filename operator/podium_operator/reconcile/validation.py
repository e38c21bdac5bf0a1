"""Turn pydantic validation errors into one message that names each field and how to fix it."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import ValidationError

from podium.api.common import ApiModel

M = TypeVar("M", bound=ApiModel)


def describe_validation_error(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"spec.{location}: {message}" if location else f"spec: {message}")
    return "; ".join(problems)


def parse_spec(model: type[M], spec: dict[str, Any]) -> tuple[M | None, str]:
    """(parsed spec, "") or (None, a readable error)."""
    try:
        return model.model_validate(spec), ""
    except ValidationError as error:
        return None, describe_validation_error(error)
