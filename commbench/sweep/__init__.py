"""Running a sweep on every rank: launch, world and groups, plan, exact check, timing,
rank agreement, faults, memory and the recorder."""
