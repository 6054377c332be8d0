"""What the data params point at, by content: the fingerprint that makes data a DVC dependency.

DVC hashes only the paths a stage lists in `deps`, and a file named in params.yaml is just a string
to it: edit `my/source.csv` and `dvc status` saw nothing, and the run cache could restore outputs
built from the file's old content. The `inputs` stage (always run, cheap) writes this fingerprint to
data/inputs.json and ingest depends on that file, so a data change re-runs ingest and everything
after it, an unchanged file (even touched) re-runs nothing, and the run cache is keyed by content.

What identifies each kind of corpus:
- local files: the bytes of every file, in every layout (one path; train/validation/test; aligned pairs);
- packaged corpora: the package's installed version and the bytes of the files read from it;
- hub datasets: the dataset's resolved commit, or for a local builder (`csv`, `json`, ...) the bytes of
  its `data_files`.

Kept free of pandas/torch so that the always-run stage starts in well under a second.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
from pathlib import Path

from transfer.core.errors import DataError
from transfer.core.locations import PACKAGED_FILES, existing_file, package_dir
from transfer.core.params import Corpus, HubDataset, LocalFiles, PackagedCorpus

# datasets builders that read local `data_files` rather than a hub repository.
LOCAL_BUILDERS = {"csv", "json", "parquet", "text", "arrow", "pandas", "webdataset", "xml"}
COMMIT = re.compile(r"[0-9a-f]{40}")


def file_digest(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _file_entry(path: Path) -> dict:
    return {"md5": file_digest(path), "bytes": path.stat().st_size}


def local_files(spec: LocalFiles) -> dict[str, str | list[str]]:
    """{split or "all": file or [source file, target file]} as the params give them."""
    if spec.path is not None:
        return {"all": spec.path}
    return {split: value for split in ("train", "validation", "test")
            if (value := getattr(spec, split)) is not None}


def _local_fingerprint(spec: LocalFiles, domain: str) -> dict:
    files = {}
    for split, value in local_files(spec).items():
        key = f"data.{domain}.{'path' if split == 'all' else split}"
        for path in value if isinstance(value, list) else [value]:
            files[path] = _file_entry(existing_file(path, key))
    return {"kind": "files", "files": files}


def _packaged_fingerprint(spec: PackagedCorpus) -> dict:
    package, distribution, patterns = PACKAGED_FILES[spec.name]
    root = package_dir(package)
    paths = sorted(p for pattern in patterns for p in root.glob(pattern))
    if not paths:
        raise DataError(f"package `{package}` holds none of {', '.join(patterns)}: reinstall it (`make install`)")
    # One digest over all files: bbc_news is 2,225 small files, which would make a long listing.
    digest = hashlib.md5(usedforsecurity=False)
    for path in paths:
        digest.update(f"{path.relative_to(root).as_posix()}\0{file_digest(path)}\n".encode())
    return {"kind": "packaged", "name": spec.name, "package": distribution,
            "version": importlib.metadata.version(distribution), "files": len(paths), "md5": digest.hexdigest()}


def _data_files(data_files: dict[str, str] | str | None) -> list[str]:
    if data_files is None:
        return []
    values = data_files.values() if isinstance(data_files, dict) else [data_files]
    return [v for value in values for v in ([value] if isinstance(value, str) else value)]


def _hub_fingerprint(spec: HubDataset, domain: str) -> dict:
    if spec.path in LOCAL_BUILDERS or Path(spec.path).exists():
        files: dict[str, dict] = {}
        patterns = _data_files(spec.data_files) or ([spec.path] if Path(spec.path).exists() else [])
        for pattern in patterns:
            matched = sorted(Path().glob(pattern)) if any(c in pattern for c in "*?[") else [Path(pattern)]
            if not matched:
                raise DataError(f"data.{domain}.data_files: `{pattern}` matches no file")
            for path in matched:
                listing = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
                files.update({str(p): _file_entry(existing_file(p, f"data.{domain}.data_files")) for p in listing})
        return {"kind": "hub", "path": spec.path, "files": files}
    return {"kind": "hub", "path": spec.path, "config": spec.config, "commit": resolve_hub_revision(spec, domain)}


def resolve_hub_revision(spec: HubDataset, domain: str) -> str:
    """The commit a hub dataset's `revision` (default: the main branch) points at now.

    A branch moves; the commit does not. Offline, the commit of the locally cached snapshot is used.
    """
    if spec.revision and COMMIT.fullmatch(spec.revision):
        return spec.revision
    import huggingface_hub  # only hub corpora need it (it pulls in requests and more)

    try:
        return huggingface_hub.HfApi().dataset_info(spec.path, revision=spec.revision).sha
    except Exception as online_error:  # offline, unknown repository, gated: try the local cache
        try:
            folder = huggingface_hub.snapshot_download(spec.path, repo_type="dataset", revision=spec.revision,
                                                       local_files_only=True)
            return Path(folder).name
        except Exception:
            raise DataError(f"data.{domain}: cannot resolve which commit of hub dataset `{spec.path}` to read "
                            f"({type(online_error).__name__}: {online_error}); with no network, pin "
                            f"data.{domain}.revision to a commit id of a snapshot in your HF cache") from None


def fingerprint_corpus(spec: Corpus, domain: str) -> dict:
    if isinstance(spec, PackagedCorpus):
        return _packaged_fingerprint(spec)
    if isinstance(spec, LocalFiles):
        return _local_fingerprint(spec, domain)
    return _hub_fingerprint(spec, domain)


def fingerprint_inputs(source: Corpus, target: Corpus) -> dict:
    return {"source": fingerprint_corpus(source, "source"), "target": fingerprint_corpus(target, "target")}


def describe_changes(before: dict, after: dict) -> list[str]:
    """What differs between two fingerprints, one line each (files added, removed, edited)."""
    changes = []
    for domain in ("source", "target"):
        old, new = before.get(domain, {}), after[domain]
        if old == new:
            continue
        old_files, new_files = old.get("files", {} if not old else None), new.get("files")
        listed = len(changes)
        if isinstance(old_files, dict) and isinstance(new_files, dict):
            for path in sorted(old_files.keys() | new_files.keys()):
                if path not in old_files:
                    changes.append(f"{domain}: {path} read ({new_files[path]['bytes']:,} bytes, md5 "
                                   f"{new_files[path]['md5'][:8]})")
                elif path not in new_files:
                    changes.append(f"{domain}: {path} no longer read")
                elif old_files[path] != new_files[path]:
                    changes.append(f"{domain}: {path} changed ({old_files[path]['bytes']:,} -> "
                                   f"{new_files[path]['bytes']:,} bytes, md5 {old_files[path]['md5'][:8]} -> "
                                   f"{new_files[path]['md5'][:8]})")
        if len(changes) == listed:  # another corpus, package version or hub commit
            new_text = ", ".join(f"{k}={v}" for k, v in new.items() if k != "files")
            if old:
                old_text = ", ".join(f"{k}={v}" for k, v in old.items() if k != "files")
                changes.append(f"{domain}: {old_text} -> {new_text}")
            else:
                changes.append(f"{domain}: {new_text}")
    return changes
