"""Shared helpers of the golden generators gen_<library>_golden.py (stdlib only).

A generator describes each case as (name, spec, base values, reference text, steps, value function) and writes a
hpsched.golden.GoldenFile (tests/golden/golden.proto) in the protobuf JSON mapping with json.dump(indent=1), so floats
are Python reprs and round-trip exactly.
"""

import json

STEP_LIMIT = 2**53
FAR = [10**3, 10**4, 10**5, 10**6, 10**7 - 1, 10**7, 2**31, 2**53 - 1]


def steps_near(boundaries, first=20, width=3, far=FAR):
    """Steps 0..first, every boundary +- width, and the far steps; sorted, unique, within [0, 2^53)."""
    out = set(range(first + 1))
    for b in boundaries:
        for d in range(-width, width + 1):
            out.add(b + d)
    out.update(far)
    return sorted(s for s in out if 0 <= s < STEP_LIMIT)


def case(name, spec, bases, reference, steps, value):
    """value(step, group) -> float. Every value must be finite."""
    points = []
    for s in steps:
        values = [value(s, g) for g in range(len(bases))]
        for v in values:
            if v != v or v in (float("inf"), float("-inf")):
                raise ValueError(f"{name}: step {s}: non-finite reference value {v}")
        points.append({"step": s, "values": values})
    return {"name": name, "schedule": spec, "base_values": list(bases), "reference": reference, "points": points}


def per_group(value, g):
    """A per-group parameter: a scalar, or a list with one value per group."""
    return value[g] if isinstance(value, list) else value


def write(path, source, cases):
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    with open(path, "w") as f:
        json.dump({"source": source, "cases": cases}, f, indent=1)
        f.write("\n")
    print(f"{path}: {len(cases)} cases, {sum(len(c['points']) for c in cases)} points")
