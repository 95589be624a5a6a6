"""commbench: list vs tensor collectives for data-parallel attention, measured honestly."""

__version__ = "0.1.0"
