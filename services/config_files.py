"""Business data files (TOML) read into pydantic models; any problem names the file and field."""
from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

Model = TypeVar("Model", bound=BaseModel)


def describe_error(err: ErrorDetails) -> str:
    return f"{'.'.join(str(part) for part in err['loc']) or '(top)'}: {err['msg']}"


def load_toml_model(
    path: Path | str,
    model: type[Model],
    error: type[Exception],
    what: str,
    describe: Callable[[ErrorDetails], str] = describe_error,
) -> Model:
    """`what` names the file in messages ("catalog"): not found, not TOML, or invalid fields."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{what} file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{what} file {path} is not valid TOML: {exc}") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise error(f"{what} {path} is invalid: {'; '.join(describe(err) for err in exc.errors())}") from None
