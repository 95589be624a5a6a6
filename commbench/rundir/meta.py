"""meta.json as one typed model, and the steps that bring an older schema's file up to it.

asv's model: the file says which schema wrote it (`schema_version`; absent in schema 1),
one `update_to_N` per schema step is applied in order, so every consumer reads one shape
whatever wrote the file, and a file from a newer commbench is refused (its keys may mean
what this one cannot know). The CSV side of the same steps is `results.ADDED_COLUMNS`.
Each key is declared once, here; consumers read attributes, never `.get` chains.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from commbench.config.settings import SweepConfig, recorded_config
from commbench.rundir.schema import SCHEMA_VERSION


class Device(BaseModel):
    """One rank's device: a GPU's name, or on CPU the processor."""

    model_config = ConfigDict(extra="forbid")

    type: str
    name: str | None = None


class Versions(BaseModel):
    """The software stack a run was measured with (every rank's, rank 0's recorded)."""

    model_config = ConfigDict(extra="forbid")

    commbench: str | None = None
    torch: str | None = None
    python: str | None = None
    cuda: str | None = None
    nccl_built: str | None = None  # what torch was built with
    nccl_runtime: str | None = None  # what the bound library says (schema 1, later runs)
    nccl_path: str | None = None  # the library NCCL calls resolve to
    nccl_mapped: list[str] | None = None  # every libnccl mapped, bound or not (recorded only)

    def recorded(self) -> dict[str, Any]:
        """The versions the file holds, by name (not the ones an older commbench lacked)."""
        return self.model_dump(exclude_unset=True)


class Host(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform: str | None = None
    cpu_count: int | None = None
    argv: list[str] = []


class Stopped(BaseModel):
    """Why a run ended before its plan did, and when."""

    model_config = ConfigDict(extra="forbid")

    at: str
    reason: str


class RunMeta(BaseModel):
    """A run's meta.json, in this schema's shape whatever schema wrote it."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int  # the schema the run's files were written in, kept after upgrading
    label: str | None = None
    backend: str
    world_size: int
    nodes: int | None = None
    hostnames: list[str] = []
    devices: list[Device] = []
    versions: Versions = Versions()
    ranks_disagree: dict[str, list[Any]] = {}  # version name -> every rank's value
    layout: str  # the group layout (update_to_3: every earlier run was contiguous)
    groups: dict[str, list[list[int]]] = {}  # tp -> its groups' ranks (schema 3 on)
    # the settings the run measured with (recorded_config: what it recorded, over the
    # defaults for what it did not record)
    config: SweepConfig = Field(default_factory=lambda: recorded_config({}))
    config_hash: str | None = None
    points: int | None = None
    env: dict[str, str] = {}
    topology: str | None = None  # `nvidia-smi topo -m`, where there was one
    host: Host = Host()
    started: str | None = None
    finished: str | None = None
    resumed: list[str] = []  # when each --resume started
    stopped: Stopped | None = None
    apis: dict[str, list[str]] = {}  # collective.variant -> the torch calls it made
    phases: dict[str, float] | None = None  # rank 0's seconds per phase
    memory: dict[str, list[float | None]] | None = Field(default=None)  # figure -> per rank

    @field_validator("config", mode="before")
    @classmethod
    def _settings(cls, value: Any) -> Any:
        return recorded_config(value) if isinstance(value, dict) else value

    @property
    def rounds(self) -> int:
        return self.config.rounds

    @property
    def device_names(self) -> list[str | None]:
        return [device.name for device in self.devices]


def update_to_2(meta: dict[str, Any]) -> dict[str, Any]:
    """Schema 2 added columns only (`vocab`, `padded_vocab`, `temp_mem_bytes`)."""
    return meta


def update_to_3(meta: dict[str, Any]) -> dict[str, Any]:
    """Schema 3 recorded the group layout: before it, every group was contiguous."""
    return {"layout": "contiguous", **meta}


def update_to_4(meta: dict[str, Any]) -> dict[str, Any]:
    """Schema 4 added columns only (all_to_all's routing)."""
    return meta


# schema N -> how a file of schema N - 1 reads in it; applied in order.
UPDATES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    2: update_to_2,
    3: update_to_3,
    4: update_to_4,
}
assert max(UPDATES) == SCHEMA_VERSION, "a schema step needs its update_to_N"


def written_schema(meta: dict[str, Any]) -> Any:
    """The schema a meta.json says wrote it (1 had no `schema_version` key)."""
    return meta.get("schema_version", 1)


def upgrade(meta: dict[str, Any]) -> dict[str, Any]:
    """`meta` (of schema 1 to this one) as this schema writes it, but for `schema_version`."""
    version = written_schema(meta)
    upgraded = {**meta, "schema_version": version}
    for step in range(version + 1, SCHEMA_VERSION + 1):
        upgraded = UPDATES[step](upgraded)
    return upgraded
