"""The policy as a person reads it (``central policy show``, ``station policy show``)."""

from __future__ import annotations

from station.policy.model import Policy, Requirement


def describe(policy: Policy) -> list[str]:
    """The policy as a person reads it: bands, thresholds, texts' presence, places, settings."""
    lines = [f"policy version {policy.version}" + (" (built-in default)" if policy.version == 0 else "")]
    for kind, rules in policy.kinds.items():
        lines.append(
            f"  {kind.value}: ages {rules.min_age}-{rules.max_age}; purpose: {rules.purpose.en[:60]}"
        )
        for band in rules.bands:
            parts = []
            for name, req in (("face", band.face), ("fingers", band.fingers), ("iris", band.iris)):
                parts.append(
                    f"{name} {req.value}"
                    + (
                        f" (min {band.min_fingers})"
                        if name == "fingers" and req is Requirement.REQUIRED
                        else ""
                    )
                )
            lines.append(f"    ages {band.label:>6}: " + ", ".join(parts))
    for modality, m in policy.modalities.items():
        who = ",".join(m.override.by) if m.override.allowed else "nobody"
        extra = (
            f"; sign-off for {','.join(r.value for r in m.signoff_exceptions)}"
            if m.signoff_exceptions
            else ""
        )
        lines.append(
            f"  {modality.value}: threshold {m.threshold}, {m.attempts} attempts, override by {who}{extra}"
        )
    tehsils = sum(len(d.children) for d in policy.locations)
    ucs = sum(len(t.children) for d in policy.locations for t in d.children)
    lines.append(
        f"  places: {len(policy.locations)} districts, {tehsils} tehsils, {ucs} union councils;"
        f" {len(policy.station_places)} stations placed"
    )
    s = policy.settings
    lines.append(
        f"  station settings: retention {s.retention_days} d, idle lock {s.idle_lock_seconds} s,"
        f" {s.parallel_uploads} parallel uploads, heartbeat every {s.heartbeat_seconds} s"
    )
    return lines
