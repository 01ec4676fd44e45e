"""The `faults` section and the one shape of a fault rule, shared by the configuration
file, the admin API (`POST /faults`), the CLI and `openimds.testing` (docs/faults.md)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

# The longest a rule may wait, last or delay (a day): beyond it a test is not a test.
MAX_SECONDS = 86400
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS)]
KINDS = ("status", "sequence", "latency", "close", "hang")


class FaultSpec(BaseModel):
    """One rule: what it matches (vm, path), what it does (exactly one of status,
    sequence, latency, close, hang) and how long it lasts (times, after, window)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id: str | None = Field(None, max_length=64, description="a name; default: generated")
    vm: str | None = Field(None, description="a VM by name; default: every caller")
    path: str = Field("*", min_length=1, max_length=512, description="glob on the path")
    status: int | None = Field(None, description="answer with this status (400-599)")
    sequence: list[int] | None = Field(
        None, description="one status per request, e.g. [410, 410, 200]; 2xx lets it through"
    )
    latency: Seconds | tuple[Seconds, Seconds] | None = Field(
        None, description="delay the answer: seconds, or [low, high] drawn at random"
    )
    close: bool = Field(False, description="hang up without an answer")
    hang: bool = Field(False, description="hold the connection open without an answer")
    retry_after: int | None = Field(None, ge=0, le=86400, description="Retry-After seconds")
    times: int | None = Field(None, ge=1, description="fire this many times, then stop")
    after: Seconds = Field(0.0, description="seconds before the rule starts")
    window: Seconds | None = Field(None, gt=0, description="seconds the rule lasts once started")

    @field_validator("id")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and (not value or not value.isprintable() or "/" in value):
            raise ValueError("a rule id is printable, not empty and has no '/'")
        return value

    @field_validator("path")
    @classmethod
    def _a_request_path(cls, value: str) -> str:
        # Request paths start with '/': a pattern starting otherwise (but not with a
        # wildcard) could never match one.
        if value[0] not in "/*?[":
            raise ValueError("a request path starts with '/' (or give a glob: *, ?, [...])")
        return value

    @field_validator("status")
    @classmethod
    def _error_status(cls, value: int | None) -> int | None:
        if value is not None and not 400 <= value <= 599:
            raise ValueError(f"{value} is not an error status (400-599)")
        return value

    @field_validator("sequence")
    @classmethod
    def _statuses(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return None
        if not value or len(value) > 1000:
            raise ValueError("give 1 to 1000 statuses, e.g. [410, 410, 200]")
        for status in value:
            if not (200 <= status <= 299 or 400 <= status <= 599):
                raise ValueError(f"{status}: a step is 2xx (let through) or 400-599")
        return value

    @field_validator("latency", mode="wrap")
    @classmethod
    def _latency(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        # One sentence instead of pydantic's per-branch union wording.
        try:
            return handler(value)
        except ValidationError:
            raise ValueError(
                f"expected seconds from 0 to 86400, or [low, high] of them; got {value!r}"
            ) from None

    @field_validator("latency")
    @classmethod
    def _range(
        cls, value: float | tuple[float, float] | None
    ) -> float | tuple[float, float] | None:
        if isinstance(value, tuple) and value[0] > value[1]:
            raise ValueError(f"the range [{value[0]}, {value[1]}] goes backwards")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> FaultSpec:
        kinds = [name for name in KINDS if self._given(name)]
        if len(kinds) != 1:
            said = f"got {', '.join(kinds)}" if kinds else "got none"
            raise ValueError(f"give exactly one of status, sequence, latency, close, hang ({said})")
        if self.sequence is not None and self.times is not None:
            raise ValueError("a sequence runs once, one status per request: drop times")
        if self.retry_after is not None and self.status is None and self.sequence is None:
            raise ValueError("retry_after goes with status or sequence")
        return self

    def _given(self, kind: str) -> bool:
        value = getattr(self, kind)
        return value is not None and value is not False

    @property
    def kind(self) -> str:
        return next(name for name in KINDS if self._given(name))


class FaultsSettings(BaseModel):
    """Fault injection (docs/faults.md): rules live from the start, and a boot window."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    boot_seconds: Seconds = Field(
        0.0, description="every metadata call gets 410 for this long after start (0: off)"
    )
    rules: list[FaultSpec] = Field(default_factory=list)
