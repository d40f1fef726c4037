"""Shared plumbing of the catalog's golden generators (gen_transformers_golden.py, gen_keras_golden.py): the case
list, the sampled steps, and writing a hpsched.golden.GoldenFile (tests/golden/golden.proto) in the protobuf JSON
mapping, with floats as Python reprs so they round-trip exactly. The formulas live in each generator."""

import json
import math

# Far steps every case samples: decades up to 10^7 and the last step, 2^53 - 1.
FAR = [10**3, 10**4, 10**5, 10**6, 10**7 - 1, 10**7, 2**53 - 1]
# Base values of 1, 2 and 3 parameter groups.
B1 = [0.1]
B2 = [0.1, 0.01]
B3 = [1.0, 0.5, 0.003]


def around(*ms):
    """The steps just before, at and just after each of `ms`."""
    out = set()
    for m in ms:
        out |= {m - 1, m, m + 1}
    return {s for s in out if s >= 0}


class Cases:
    def __init__(self):
        self.cases = []

    def add(self, name, bases, spec, reference, near=range(0, 21), extra=(), far=FAR):
        steps = sorted(s for s in set(near) | set(extra) | set(far) if 0 <= s < 2**53)
        self.cases.append(dict(name=name, bases=[float(b) for b in bases], spec=spec, reference=reference,
                               steps=steps))

    def write(self, path, source, kind, values):
        """values(case, step) -> one value per group. Refuses non-finite values and duplicate names."""
        out = []
        for c in self.cases:
            points = []
            for s in c["steps"]:
                vals = [float(v) for v in values(c, s)]
                if not all(math.isfinite(v) for v in vals):
                    raise SystemExit("non-finite value at %s step %d: %r" % (c["name"], s, vals))
                points.append({"step": s, "values": vals})
            out.append({"name": c["name"], "schedule": {kind: c["spec"]}, "base_values": c["bases"],
                        "reference": c["reference"], "points": points})
        names = [c["name"] for c in out]
        assert len(names) == len(set(names)), "duplicate case names"
        with open(path, "w") as f:
            json.dump({"source": source, "cases": out}, f, indent=1)
            f.write("\n")
        print("wrote %s: %d cases, %d points" % (path, len(out), sum(len(c["points"]) for c in out)))
