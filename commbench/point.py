"""The unit of measurement: one collective variant at one shape on one dp x tp split."""

from __future__ import annotations

from dataclasses import asdict, dataclass

ELEMENT_SIZE = {"bfloat16": 2, "float16": 2, "float32": 4}


@dataclass(frozen=True)
class Point:
    """One measured row: a collective variant at one shape on one dp x tp split."""

    collective: str
    variant: str
    dtype: str
    tokens: int
    hidden: int
    world_size: int
    tp: int

    @property
    def dp(self) -> int:
        return self.world_size // self.tp

    @property
    def element_size(self) -> int:
        return ELEMENT_SIZE[self.dtype]

    def key(self) -> dict[str, object]:
        return {**asdict(self), "dp": self.dp}

    def describe(self) -> str:
        return (
            f"{self.collective}/{self.variant} {self.dtype} T={self.tokens} H={self.hidden}"
            f" tp={self.tp} dp={self.dp}"
        )
