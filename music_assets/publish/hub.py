"""Publishing a staging folder to the Hugging Face Hub: plan, resumable upload, verification.

The client talks to anything with the `huggingface_hub.HfApi` methods it uses
(`create_repo`, `list_repo_tree`, `upload_folder`, `delete_files`), so tests
can put a recording double at that boundary.

Resuming: every upload starts from the remote file list. Files whose remote
copy has the same size and hash (the LFS sha256, or the git blob id for
small files) are skipped, so after a failure part-way a re-run only sends
what is missing or different. The rest goes up in batches, one
`upload_folder` call per area of the dataset (MIDI, audio, auxiliary tables,
data shards, plots, then the card last, so a half-published repository never
carries a card that describes data it does not hold); each call commits in
resumable batches itself (hf_xet). Remote files that staging no longer has
are deleted, and the remote file list is compared with staging at the end.

The token is passed to the client, never logged, and removed from the text
of every error this module raises (errors are re-raised without their
original exception attached, since a library's message or chained response
may echo it).
"""

from __future__ import annotations

import glob
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from music_assets.io import sha256_file
from music_assets.publish import layout

REPO_TYPE = "dataset"
# hf_xet's upload pipeline starts at 256 files per commit (it adapts from there).
FILES_PER_COMMIT = 256
# Beyond this many exact-path patterns, a partly uploaded folder is sent whole
# (upload_folder skips the files the Hub already holds; fnmatch over thousands
# of patterns per file would be slower than that).
MAX_EXACT_PATTERNS = 1000
IGNORE_PATTERNS = (".*", "*/.*")  # partial files of atomic writes, caches (upload_folder extends the list it gets)
BATCH_ORDER = (layout.MIDI, layout.AUDIO, layout.AUXILIARY, layout.DATA, layout.PLOTS, "card")
REDACTED = "[REDACTED]"
NOT_RETRYABLE_STATUS = {400, 401, 403, 404}


class HubError(RuntimeError):
    """A Hub operation failed; the message never contains the token."""

    def __init__(self, message: str, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


def redact(text: str, secret: str | None) -> str:
    return text.replace(secret, REDACTED) if secret else text


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    sha256: str | None = None  # LFS / Xet files
    blob_id: str | None = None  # git object id


@dataclass
class Batch:
    name: str
    files: list[str]
    bytes: int
    allow_patterns: list[str]

    @property
    def commits(self) -> int:
        return max(1, math.ceil(len(self.files) / FILES_PER_COMMIT))


@dataclass
class UploadPlan:
    repo_id: str
    local: dict[str, int]
    remote_known: bool  # False: the remote state could not be read (no token), assumed empty
    upload: list[str]
    unchanged: list[str]
    delete: list[str]
    batches: list[Batch]

    @property
    def upload_bytes(self) -> int:
        return sum(self.local[p] for p in self.upload)

    @property
    def commits(self) -> int:
        return sum(b.commits for b in self.batches) + (1 if self.delete else 0)

    def summary(self) -> dict[str, int]:
        return {
            "files": len(self.local),
            "bytes": sum(self.local.values()),
            "files_to_upload": len(self.upload),
            "bytes_to_upload": self.upload_bytes,
            "files_unchanged": len(self.unchanged),
            "files_to_delete": len(self.delete),
            "commits": self.commits,
        }

    def markdown(self) -> str:
        rows = ["| batch | files | bytes | commits (at least) |", "|---|---|---|---|"]
        rows += [f"| {b.name} | {len(b.files)} | {b.bytes:,} | {b.commits} |" for b in self.batches]
        if self.delete:
            rows.append(f"| delete stale remote files | {len(self.delete)} | – | 1 |")
        if not self.batches and not self.delete:
            rows.append("| (nothing to do) | 0 | 0 | 0 |")
        return "\n".join(rows)


@dataclass
class Verification:
    remote_files: int
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    different: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.different)

    def describe(self) -> str:
        if self.ok:
            return f"remote holds exactly the {self.remote_files} staged files"
        parts = []
        for label, items in (("missing", self.missing), ("not in staging", self.extra), ("different", self.different)):
            if items:
                shown = ", ".join(items[:5]) + (f" and {len(items) - 5} more" if len(items) > 5 else "")
                parts.append(f"{len(items)} {label} ({shown})")
        return "remote differs from staging: " + "; ".join(parts)


@dataclass
class PublishResult:
    plan: UploadPlan
    verification: Verification
    commits: list[str]  # commit URLs or ids, one per call that committed


class LocalHashes:
    """Hashes of staged files, computed once and only when a remote copy of the same size exists."""

    def __init__(self, staging: Path):
        self.staging = staging
        self._sha: dict[str, str] = {}
        self._oid: dict[str, str] = {}

    def same(self, rel: str, size: int, remote: RemoteFile) -> bool:
        if remote.size != size:
            return False
        if remote.sha256:
            if rel not in self._sha:
                self._sha[rel] = sha256_file(self.staging / rel)
            return self._sha[rel] == remote.sha256
        if remote.blob_id:
            if rel not in self._oid:
                self._oid[rel] = layout.git_blob_sha1(self.staging / rel)
            return self._oid[rel] == remote.blob_id
        return True


def batch_name(rel: str) -> str:
    top = rel.split("/", 1)[0]
    return top if "/" in rel and top in BATCH_ORDER else "card"


def _parent(rel: str) -> str:
    return rel.rsplit("/", 1)[0] if "/" in rel else ""


def _ancestors(rel: str) -> list[str]:
    """The folders containing `rel`, outermost first ("a/b/c.txt" -> ["a", "a/b"])."""
    parts = rel.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _patterns(files: list[str], local: Iterable[str]) -> list[str]:
    """allow_patterns that select exactly `files`: a folder as a whole when every local file under it is listed."""
    under_local: dict[str, int] = {}
    under_wanted: dict[str, int] = {}
    for rel in local:
        for d in _ancestors(rel):
            under_local[d] = under_local.get(d, 0) + 1
    for rel in files:
        for d in _ancestors(rel):
            under_wanted[d] = under_wanted.get(d, 0) + 1
    by_dir: dict[str, list[str]] = {}
    for rel in files:
        by_dir.setdefault(_parent(rel), []).append(rel)
    complete = {d for d in by_dir if d and under_wanted[d] == under_local[d]}
    # the outermost complete folder is enough ("audio/*" rather than one pattern per rudiment)
    tops = {next(a for a in [*_ancestors(d), d] if under_wanted.get(a) == under_local.get(a)) for d in complete}
    patterns = [f"{glob.escape(d)}/*" for d in sorted(tops)]
    partial = [d for d in sorted(by_dir) if not (d and any(a in tops for a in [*_ancestors(d), d]))]
    exact = [glob.escape(r) for d in partial for r in sorted(by_dir[d])]
    if len(exact) > MAX_EXACT_PATTERNS:
        # Send partly uploaded folders whole: upload_folder skips the files the Hub already holds.
        patterns += [f"{glob.escape(d)}/*" for d in partial if d]
        exact = [glob.escape(r) for r in sorted(by_dir.get("", []))]
    return patterns + exact


def plan_upload(
    repo_id: str, staging: Path, remote: dict[str, RemoteFile] | None, hashes: LocalHashes | None = None
) -> UploadPlan:
    """What an upload of `staging` has to do, given the remote files (None: unknown, assumed empty)."""
    local = layout.list_files(staging)
    hashes = hashes or LocalHashes(staging)
    known = remote is not None
    remote = remote or {}
    upload, unchanged = [], []
    for rel, size in local.items():
        r = remote.get(rel)
        (unchanged if r is not None and hashes.same(rel, size, r) else upload).append(rel)
    delete = sorted(p for p in remote if p not in local and p not in layout.HUB_MANAGED)
    groups: dict[str, list[str]] = {}
    for rel in upload:
        groups.setdefault(batch_name(rel), []).append(rel)
    batches = []
    for name in BATCH_ORDER:
        files = sorted(groups.get(name, []))
        if files:
            batches.append(Batch(name, files, sum(local[f] for f in files), _patterns(files, local)))
    return UploadPlan(repo_id, local, known, sorted(upload), sorted(unchanged), delete, batches)


def verify(staging: Path, remote: dict[str, RemoteFile], hashes: LocalHashes | None = None) -> Verification:
    """Compare the remote file list (paths, sizes, hashes) with staging."""
    local = layout.list_files(staging)
    hashes = hashes or LocalHashes(staging)
    remote = {p: r for p, r in remote.items() if p not in layout.HUB_MANAGED}
    v = Verification(remote_files=len(remote))
    v.missing = sorted(p for p in local if p not in remote)
    v.extra = sorted(p for p in remote if p not in local)
    v.different = sorted(p for p in local if p in remote and not hashes.same(p, local[p], remote[p]))
    return v


class HubClient:
    """One dataset repository on the Hub, through an `HfApi`-like object already holding the token."""

    def __init__(
        self,
        api: Any,
        repo_id: str,
        token: str | None,
        private: bool = True,
        log: Callable[[str], None] = lambda _msg: None,
    ):
        self.api = api
        self.repo_id = repo_id
        self._token = token
        self.private = private
        self.log = log

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one Hub call; any failure becomes a HubError with the token removed and no chained cause."""
        failure: HubError | None = None
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - classified and re-raised below
            failure = HubError(
                redact(f"{what} failed for {self.repo_id}: {type(exc).__name__}: {exc}", self._token),
                retryable=_retryable(exc),
            )
        # Raised outside the handler, so the original exception (and whatever it echoes) is not attached.
        raise failure

    def remote_files(self, missing_ok: bool = False) -> dict[str, RemoteFile]:
        """Every file in the repository; {} when it does not exist and `missing_ok`."""
        from huggingface_hub.errors import RepositoryNotFoundError  # noqa: PLC0415
        from huggingface_hub.hf_api import RepoFile  # noqa: PLC0415

        def listing() -> dict[str, RemoteFile]:
            try:
                entries = list(self.api.list_repo_tree(self.repo_id, repo_type=REPO_TYPE, recursive=True))
            except RepositoryNotFoundError:
                if missing_ok:
                    return {}
                raise
            out = {}
            for e in entries:
                if not isinstance(e, RepoFile):  # a folder
                    continue
                lfs = getattr(e, "lfs", None)
                out[e.path] = RemoteFile(e.path, int(e.size), lfs.sha256 if lfs else None, e.blob_id)
            return out

        return self._call("listing the repository", listing)

    def plan(self, staging: Path, hashes: LocalHashes | None = None) -> UploadPlan:
        return plan_upload(self.repo_id, staging, self.remote_files(missing_ok=True), hashes)

    def publish(self, staging: Path, commit_message: str) -> PublishResult:
        """Create the repo if needed, upload what differs, delete what staging dropped, then verify."""
        self._call(
            "creating the repository",
            self.api.create_repo,
            self.repo_id,
            repo_type=REPO_TYPE,
            private=self.private,
            exist_ok=True,
        )
        hashes = LocalHashes(staging)
        plan = self.plan(staging, hashes)
        self.log(
            f"{self.repo_id}: {len(plan.unchanged)} files already on the Hub, {len(plan.upload)} to upload "
            f"({plan.upload_bytes:,} bytes) in {len(plan.batches)} batch(es), {len(plan.delete)} to delete"
        )
        commits = []
        for batch in plan.batches:
            self.log(f"uploading {batch.name}: {len(batch.files)} files, {batch.bytes:,} bytes")
            info = self._call(
                f"uploading {batch.name}",
                self.api.upload_folder,
                repo_id=self.repo_id,
                repo_type=REPO_TYPE,
                folder_path=str(staging),
                allow_patterns=batch.allow_patterns,
                ignore_patterns=list(IGNORE_PATTERNS),
                commit_message=f"{commit_message} ({batch.name})",
            )
            commits.append(str(getattr(info, "commit_url", None) or getattr(info, "oid", None) or info))
        if plan.delete:
            self.log(f"deleting {len(plan.delete)} remote files staging no longer has")
            info = self._call(
                "deleting stale files",
                self.api.delete_files,
                repo_id=self.repo_id,
                repo_type=REPO_TYPE,
                delete_patterns=[glob.escape(p) for p in plan.delete],
                commit_message=f"{commit_message} (remove stale files)",
            )
            commits.append(str(getattr(info, "commit_url", None) or getattr(info, "oid", None) or info))
        verification = verify(staging, self.remote_files(), hashes)
        if not verification.ok:
            raise HubError(f"{self.repo_id}: {verification.describe()}", retryable=True)
        return PublishResult(plan, verification, commits)


def _retryable(exc: BaseException) -> bool:
    """Authentication, permission and not-found errors will not go away by retrying."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status not in NOT_RETRYABLE_STATUS
