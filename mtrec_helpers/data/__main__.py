"""`python -m mtrec_helpers.data`: find or download a dataset and prepare it (`make data`)."""

from __future__ import annotations

import argparse
import json
import sys

from mtrec_helpers.core.errors import DataError
from mtrec_helpers.core.paths import resolve_artifacts_dir
from mtrec_helpers.data.movielens import DATASETS
from mtrec_helpers.data.store import prepare_dataset


def main(argv: list[str] | None = None) -> int:
    """Prepare one dataset and print its manifest counts."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="ml-100k", choices=sorted([*DATASETS, "synthetic"]))
    parser.add_argument("--artifacts-dir", default="")
    parser.add_argument("--min-interactions", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    artifacts = resolve_artifacts_dir(args.artifacts_dir, args.dataset)
    try:
        data = prepare_dataset(args.dataset, artifacts, args.min_interactions, args.seed)
    except DataError as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return 1
    manifest = data.manifest
    print(f"{'Reused' if data.reused else 'Prepared'} {data.folder} from {manifest['source_dir']}")
    print(json.dumps({k: manifest[k] for k in ("raw", "counts", "splits", "repairs")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
