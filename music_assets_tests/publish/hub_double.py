"""A recording double for `huggingface_hub.HfApi`: in-memory repositories (datasets or models).

It implements the four methods the publisher uses with the library's own
types and selection rules: `list_repo_tree` yields real `RepoFile` /
`RepoFolder` objects (LFS sha256 for binary files, the git blob id for all),
`upload_folder` selects files with the library's `filter_repo_objects`, and
failures are the library's `HfHubHTTPError` / `RepositoryNotFoundError` over
an `httpx.Response`. Every call is recorded; an upload can be told to fail
after a number of files has been committed (as a batched upload that dies
part-way leaves its earlier commits on the Hub).
"""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import httpx
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from huggingface_hub.hf_api import RepoFile, RepoFolder
from huggingface_hub.utils import filter_repo_objects

LFS_SUFFIXES = (".parquet", ".flac", ".mid", ".png", ".onnx", ".safetensors")
GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"


def _http_error(status: int, message: str) -> HfHubHTTPError:
    response = httpx.Response(status, request=httpx.Request("POST", "https://hub.test/api/datasets"))
    cls = RepositoryNotFoundError if status == 404 else HfHubHTTPError
    return cls(message, response=response)


@dataclass
class Failure:
    after_files: int  # fail once this many files have been committed in total
    status: int = 500
    message: str = "Internal Server Error while committing"


@dataclass
class RecordingHfApi:
    token: str | None = None
    endpoint: str | None = None
    repos: dict[str, dict[str, bytes]] = field(default_factory=dict)
    private: dict[str, bool] = field(default_factory=dict)
    calls: list[tuple[str, dict]] = field(default_factory=list)
    uploads: list[list[str]] = field(default_factory=list)  # files selected by each upload_folder call
    failure: Failure | None = None
    committed: list[str] = field(default_factory=list)  # every file committed, in order
    failed_upload: int | None = None  # index in `uploads` of the call that failed

    def create_repo(
        self, repo_id: str, *, repo_type: str | None = None, private: bool = False, exist_ok: bool = False, **kwargs
    ) -> str:
        self.calls.append(
            ("create_repo", {"repo_id": repo_id, "repo_type": repo_type, "private": private, "exist_ok": exist_ok})
        )
        if repo_id in self.repos and not exist_ok:
            raise _http_error(409, f"You already created this dataset repo: {repo_id}")
        if repo_id not in self.repos:
            self.repos[repo_id] = {".gitattributes": GITATTRIBUTES}
            self.private[repo_id] = private
        return f"https://hub.test/datasets/{repo_id}"

    def list_repo_tree(
        self,
        repo_id: str,
        path_in_repo: str | None = None,
        *,
        recursive: bool = False,
        repo_type: str | None = None,
        **kwargs,
    ):
        self.calls.append(("list_repo_tree", {"repo_id": repo_id, "recursive": recursive, "repo_type": repo_type}))
        if repo_id not in self.repos:
            raise _http_error(404, f"Repository Not Found for url: https://hub.test/api/datasets/{repo_id}/tree/main")
        folders = set()
        for path, data in sorted(self.repos[repo_id].items()):
            parts = path.split("/")[:-1]
            folders.update("/".join(parts[: i + 1]) for i in range(len(parts)))
            oid = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
            lfs = (
                {"size": len(data), "oid": hashlib.sha256(data).hexdigest(), "pointerSize": 134}
                if path.endswith(LFS_SUFFIXES)
                else None
            )
            yield RepoFile(path=path, size=len(data), oid=oid, lfs=lfs)
        for folder in sorted(folders):
            yield RepoFolder(path=folder, oid="0" * 40)

    def upload_folder(
        self,
        *,
        repo_id: str,
        folder_path: str,
        repo_type: str | None = None,
        allow_patterns=None,
        ignore_patterns=None,
        commit_message: str | None = None,
        **kwargs,
    ):
        self.calls.append(
            (
                "upload_folder",
                {
                    "repo_id": repo_id,
                    "repo_type": repo_type,
                    "allow_patterns": allow_patterns,
                    "commit_message": commit_message,
                },
            )
        )
        if repo_id not in self.repos:
            raise _http_error(404, f"Repository Not Found: {repo_id}")
        root = Path(folder_path)
        files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        selected = list(filter_repo_objects(files, allow_patterns=allow_patterns, ignore_patterns=ignore_patterns))
        self.uploads.append(selected)
        for rel in selected:
            if self.failure is not None and len(self.committed) >= self.failure.after_files:
                failure, self.failure = self.failure, None  # fail once
                self.failed_upload = len(self.uploads) - 1
                raise _http_error(failure.status, failure.message)
            self.repos[repo_id][rel] = (root / rel).read_bytes()
            self.committed.append(rel)
        return SimpleNamespace(commit_url=f"https://hub.test/datasets/{repo_id}/commit/{len(self.uploads)}")

    def delete_files(
        self,
        repo_id: str,
        delete_patterns: list[str],
        *,
        repo_type: str | None = None,
        commit_message: str | None = None,
        **kwargs,
    ):
        self.calls.append(("delete_files", {"repo_id": repo_id, "delete_patterns": list(delete_patterns)}))
        repo = self.repos[repo_id]
        for path in list(repo):
            if path != ".gitattributes" and any(fnmatch.fnmatchcase(path, p) for p in delete_patterns):
                del repo[path]
        return SimpleNamespace(commit_url=f"https://hub.test/datasets/{repo_id}/commit/delete")

    def calls_named(self, name: str) -> list[dict]:
        return [kw for n, kw in self.calls if n == name]
