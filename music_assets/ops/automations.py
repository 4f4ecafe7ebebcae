"""`python -m music_assets.ops.automations`: which sensors and schedules are on, and how to start the others.

`make dev` prints this before starting the UI. "on" is what the daemon will run: the
instance's own state for an automation once someone started or stopped it (the UI
toggle, `dagster sensor|schedule start|stop`), else its default
(`music_assets.defs.automation`: stopped, except the bookkeeping sensors and what
`MUSIC_ASSETS_AUTOMATIONS` names).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

MODULE = "music_assets.definitions"


@dataclass(frozen=True)
class Automation:
    name: str
    kind: str  # "sensor" or "schedule"
    on: bool
    source: str  # "default" or "instance" (started or stopped by someone)
    description: str


def _stored_states() -> dict[tuple[str, str], bool]:
    """(kind, name) -> running, for automations started or stopped on the instance in $DAGSTER_HOME."""
    home = os.environ.get("DAGSTER_HOME")
    if not home or not os.path.isfile(os.path.join(home, "dagster.yaml")):
        return {}
    import dagster as dg  # noqa: PLC0415
    from dagster._core.scheduler.instigation import InstigatorStatus, InstigatorType  # noqa: PLC0415

    kinds = {InstigatorType.SENSOR: "sensor", InstigatorType.SCHEDULE: "schedule"}
    with dg.DagsterInstance.get() as instance:
        return {
            (kinds[s.instigator_type], s.name): s.status == InstigatorStatus.RUNNING
            for s in instance.all_instigator_state()
            if s.instigator_type in kinds and s.status != InstigatorStatus.DECLARED_IN_CODE
        }


def _summary(description: str, limit: int = 72) -> str:
    """The description's first sentence, cut at a word to `limit` characters."""
    first = description.split(". ")[0].split(": ")[0].strip()
    if len(first) <= limit:
        return first
    return first[: first.rfind(" ", 0, limit - 3)].rstrip(",;") + "..."


def automations() -> list[Automation]:
    import dagster as dg  # noqa: PLC0415

    from music_assets.definitions import defs  # noqa: PLC0415

    stored = _stored_states()
    out = []
    for kind, items, running in (
        ("sensor", defs.sensors, dg.DefaultSensorStatus.RUNNING),
        ("schedule", defs.schedules, dg.DefaultScheduleStatus.RUNNING),
    ):
        for item in items:
            default_on = item.default_status == running
            on = stored.get((kind, item.name), default_on)
            source = "instance" if (kind, item.name) in stored else "default"
            out.append(Automation(item.name, kind, on, source, _summary(item.description or "")))
    return sorted(out, key=lambda a: (not a.on, a.kind, a.name))


def report(items: list[Automation], ui: str = "http://127.0.0.1:3000") -> str:
    width = max(len(a.name) for a in items)
    lines = ["Automations (sensors and schedules) the daemon will run:"]
    from music_assets.defs.automation import ON_BY_DEFAULT, PRODUCTION  # noqa: PLC0415

    order = {name: i for i, name in enumerate(PRODUCTION)}  # the sources group's first

    for a in items:
        why = " (started or stopped on this instance)" if a.source == "instance" else ""
        why += " (never starts a run)" if a.name in ON_BY_DEFAULT else ""
        lines.append(f"  {'on ' if a.on else 'off'}  {a.kind:8}  {a.name:{width}}  {a.description[:80]}{why}")
    off = [a for a in items if not a.on]
    if off:
        lines.append("The others start no run until you start them (a fresh `dagster dev` starts none):")
        for kind in ("sensor", "schedule"):
            names = sorted((a.name for a in off if a.kind == kind), key=lambda n: (order.get(n, len(order)), n))
            if names:
                more = f"   (likewise {', '.join(names[1:])})" if len(names) > 1 else ""
                lines.append(f"  dagster {kind} start -m {MODULE} {names[0]}{more}")
        lines += [
            f"  or their toggle in the UI: {ui}/automation",
            "  or on by default: MUSIC_ASSETS_AUTOMATIONS=raw_audio_sensor,follow_inputs make dev (names, or all)",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ui = argv[0] if argv else "http://127.0.0.1:3000"
    print(report(automations(), ui), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
