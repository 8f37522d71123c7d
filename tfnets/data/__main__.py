"""`python -m tfnets.data [--data-dir DIR]` (`make data`): put every dataset in place.

Downloads each dataset that has a public source and is not in the data directory yet (progress bar, checksum
where known; an interrupted download resumes on the next run), then lists the datasets to copy in by hand.
Exit code 0 when every downloadable dataset is in place, 1 when some could not be fetched (one line each).
"""

import sys

from tfnets.data.catalog import DATASETS
from tfnets.data.download import DownloadError, download
from tfnets.data.paths import ENV_OFFLINE, offline, resolve_data_dir
from tfnets.errors import DataError
from tfnets.experiment.cli import ArgumentParser, exit_with


def build_parser():
    parser = ArgumentParser(prog="python -m tfnets.data", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", default=None, help="dataset folder (default: $TFNETS_DATA_DIR, else ~/.cache/tfnets/data)"
    )
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    data_dir = resolve_data_dir(args.data_dir)
    print(f"data directory: {data_dir}")
    failed, by_hand = [], []
    for dataset in DATASETS:
        if dataset.is_present(data_dir):
            print(f"  {dataset.name}: in place")
            continue
        if not dataset.downloads:
            by_hand.append(dataset)
            continue
        for item in dataset.downloads:
            target = data_dir / item.path
            if target.exists():
                continue
            if offline():
                failed.append(f"{target} ({item.url}): download skipped because {ENV_OFFLINE}=1")
                continue
            try:
                download(item.url, target, item.sha256)
            except KeyboardInterrupt:
                print("interrupted: run the same command again to resume the download", file=sys.stderr)
                raise SystemExit(130) from None
            except (DownloadError, OSError) as err:
                failed.append(f"{target}: {err}")
        if dataset.is_present(data_dir):
            print(f"  {dataset.name}: downloaded")
    for dataset in by_hand:
        places = " or ".join(str(data_dir / p) for p in dataset.present if isinstance(p, str))
        print(f"  {dataset.name}: no public download; copy it to {places} (used by {dataset.used_by})")
    for line in failed:
        print(f"error: could not fetch {line}", file=sys.stderr)
    if failed:
        raise DataError(f"{len(failed)} file(s) could not be fetched")


if __name__ == "__main__":
    exit_with(main)
