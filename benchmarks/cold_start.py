"""Cold start of the dispatcher Lambda: a fresh interpreter imports the handler and
answers its first ``get_user`` against PostgreSQL.

    .venv/bin/python benchmarks/cold_start.py [--runs 15]

``get_user`` runs on SQLAlchemy Core alone; a second series answers
``get_user_groups`` first instead, a method that loads the ORM and maps the
models on the way (what any first call that changes something pays).

Each run is a new process, as a Lambda cold start is; the figures are the
process's own clock from before the handler import to the first answer, so
interpreter start-up itself (which Lambda's runtime does before ``INIT``) is
not counted. The ``repohost`` package is loaded as Lambda loads it: from the
shared layer built by ``layers/shared/Makefile`` (the target ``sam build`` runs),
bytecode included, so no run compiles source.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _setup import ADMIN_KEY, ROOT, describe, migrated_postgres

PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, "functions/api")
from app import handler
t1 = time.perf_counter()
event = json.load(open("events/api_get_user.json"))
event["body"] = json.dumps({"id": 1, "api_key": sys.argv[1], "method": sys.argv[2], "args": {}})
response = handler(event, None)
t2 = time.perf_counter()
assert '"error": null' in response["body"], response["body"]
print(json.dumps({"import_ms": (t1 - t0) * 1000, "total_ms": (t2 - t0) * 1000}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with migrated_postgres(), tempfile.TemporaryDirectory() as layer:
        build = ["make", "-s", "-C", "layers/shared", "build-SharedLayer"]
        subprocess.run(
            [*build, f"ARTIFACTS_DIR={layer}", f"PYTHON={sys.executable}"],
            cwd=ROOT,
            check=True,
        )
        env = {
            **os.environ,
            "PYTHONPATH": str(Path(layer) / "python"),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        imports: list[float] = []
        totals: dict[str, list[float]] = {"get_user": [], "get_user_groups": []}
        for _ in range(args.runs):
            for method, samples in totals.items():
                out = subprocess.run(
                    [sys.executable, "-c", PROBE, ADMIN_KEY, method],
                    cwd=ROOT,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                sample = json.loads(out.strip().splitlines()[-1])
                imports.append(sample["import_ms"])
                samples.append(sample["total_ms"])
    print(f"handler import:                           {describe(imports)}")
    print(f"import + first get_user (PG):             {describe(totals['get_user'])}")
    print(f"import + first get_user_groups (PG, ORM): {describe(totals['get_user_groups'])}")


if __name__ == "__main__":
    main()
