"""`python -m bench [--smoke]`: measure, print a table, and print one JSON object as the last line.

A measurement that fails or whose code path is not there is reported as null with a note under
"missing", never estimated.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import report


@dataclass(frozen=True)
class Sizes:
    eval_users: int
    eval_rounds: int
    scale_users: tuple[int, ...]
    scale_segments: tuple[int, ...]
    rebuild_users: tuple[int, int]
    cold_repeats: int
    cold_only: list[str] | None
    delivery_audience: int
    import_rows: int


FULL = Sizes(5_000, 3, (1_000, 10_000, 100_000), (10, 100), (100, 700), 7, None, 50_000, 5_000)
SMOKE = Sizes(
    300,
    1,
    (200, 400),
    (10,),
    (20, 40),
    1,
    ["AuthorizerFunction", "IngestFunction", "MembershipStreamFunction"],
    200,
    300,
)


def _attempt[T](name: str, missing: dict[str, str], work: Callable[[], T]) -> T | None:
    started = time.perf_counter()
    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
    try:
        result = work()
    except Exception as error:  # reported as missing, with the reason; the other sections still run
        traceback.print_exc(file=sys.stderr)
        missing[name] = f"{type(error).__name__}: {error}"[:500]
        return None
    print(f"[bench] {name} done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks that the suite runs")
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    warnings.filterwarnings("ignore")
    os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    missing: dict[str, str] = {}
    now = time.time()  # one instant for both sides of the eval and for the scale runs

    def eval_section() -> Any:
        from bench import evaluation

        return evaluation.run(sizes.eval_users, now, sizes.eval_rounds)

    def scale_section() -> Any:
        from bench import scale

        return scale.run(sizes.scale_users, sizes.scale_segments, now)

    def calls_section() -> Any:
        from bench import aws_calls

        return aws_calls.run(sizes.rebuild_users)

    evaluated = _attempt("eval", missing, eval_section)
    scaled = _attempt("scale", missing, scale_section)
    counted = _attempt("aws_calls", missing, calls_section)

    def cold_section() -> Any:
        from bench import cold_start

        return cold_start.run(sizes.cold_repeats, sizes.cold_only)

    started = _attempt("cold_start", missing, cold_section)

    def templates_section() -> Any:
        from bench import templates

        return templates.run(repeats=1 if args.smoke else 5)

    rendered = _attempt("templates", missing, templates_section)

    def delivery_section() -> Any:
        from bench import delivery

        return delivery.run(sizes.delivery_audience)

    delivered = _attempt("delivery", missing, delivery_section)

    def import_section() -> Any:
        from bench import csv_import

        return csv_import.run(sizes.import_rows)

    imported = _attempt("csv_import", missing, import_section)
    result = report.build(
        evaluated,
        counted,
        started,
        scaled,
        missing,
        smoke=args.smoke,
        rendered=rendered,
        delivered=delivered,
        imported=imported,
    )
    sys.stdout.flush()
    print(report.table(result))
    print(json.dumps(result, sort_keys=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
