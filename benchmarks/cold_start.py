"""Cold start of the dispatcher Lambda: a fresh interpreter imports the handler and
answers its first ``get_user`` against PostgreSQL.

    .venv/bin/python benchmarks/cold_start.py [--runs 15]

``get_user`` runs on SQLAlchemy Core alone; a second series answers
``get_user_groups`` first instead, a method that loads the ORM and maps the
models on the way (what any first call that changes something pays). Last,
the import of each GET view function's handler.

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

VIEW_PROBE = r"""
import sys, time
t0 = time.perf_counter()
sys.path.insert(0, "functions/" + sys.argv[1])
from app import handler
print((time.perf_counter() - t0) * 1000)
"""
VIEW_FUNCTIONS = ("files", "changesets", "archive", "feeds")


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
        views: dict[str, list[float]] = {name: [] for name in VIEW_FUNCTIONS}

        def last_line(*argv: str) -> str:
            done = subprocess.run(
                [sys.executable, "-c", *argv], cwd=ROOT, env=env, capture_output=True, text=True
            )
            done.check_returncode()
            return done.stdout.strip().splitlines()[-1]

        for _ in range(args.runs):
            for method, samples in totals.items():
                sample = json.loads(last_line(PROBE, ADMIN_KEY, method))
                imports.append(sample["import_ms"])
                samples.append(sample["total_ms"])
            for name, samples in views.items():
                samples.append(float(last_line(VIEW_PROBE, name)))
    print(f"handler import:                           {describe(imports)}")
    print(f"import + first get_user (PG):             {describe(totals['get_user'])}")
    print(f"import + first get_user_groups (PG, ORM): {describe(totals['get_user_groups'])}")
    for name, samples in views.items():
        print(f"{name + ' view function, handler import:':42}{describe(samples)}")


if __name__ == "__main__":
    main()
