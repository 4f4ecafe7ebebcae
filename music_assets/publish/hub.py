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

Deferred sample shards (staging's `deferred` storage) are in the plan with
their planned size; the upload builds them from their plans in groups of at
most `build_batch_bytes`, uploads each group in one `upload_folder` call and
deletes the built files, so no more than a group is ever on disk. The size and
hash of each build are kept in `.deferred/built.json`: a resumed or repeated
upload compares them with the Hub's copy without building again.

The token is passed to the client, never logged, and removed from the text
of every error this module raises (errors are re-raised without their
original exception attached, since a library's message or chained response
may echo it).
"""

from __future__ import annotations

import glob
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from music_assets.io import sha256_file
from music_assets.publish import layout
from music_assets.publish import staging as staging_mod

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
BUILD_BATCH_BYTES = 2_000_000_000  # deferred shards built (and on disk) at once: four 500 MB shards
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
    groups: int = 0  # deferred shards: one build-and-upload commit per group

    @property
    def commits(self) -> int:
        return self.groups or max(1, math.ceil(len(self.files) / FILES_PER_COMMIT))


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
    """Hashes of staged files, computed once and only when a remote copy of the same size exists; for a
    deferred shard, the size and hashes its last build had (when its plan is unchanged since)."""

    def __init__(self, staging: Path):
        self.staging = staging
        self._sha: dict[str, str] = {}
        self._oid: dict[str, str] = {}
        self.deferred: dict[str, dict] = {}  # rel -> its plan's info
        self._fingerprints: dict[str, bytes] = {}
        for rel in layout.deferred_shards(staging):
            plan = layout.deferred_path(staging, rel)
            meta = pq.read_schema(plan).metadata or {}  # read once: the plan and its fingerprint
            self.deferred[rel] = staging_mod.plan_info_of(meta) or {}
            self._fingerprints[rel] = meta.get(staging_mod.FINGERPRINT_KEY, b"")
        self.built = staging_mod.read_built_record(staging)

    def build_of(self, rel: str) -> dict | None:
        """The record of the deferred shard `rel`'s last build, if it was built from its current plan."""
        rec = self.built.get(rel)
        return rec if rec and rec.get("fingerprint", "").encode() == self._fingerprints.get(rel) else None

    def files(self) -> dict[str, int]:
        """{path: size} of the dataset: the files on disk, and each deferred shard at its built size (when
        known) or its planned size."""
        local = {rel: size for rel, size in layout.list_files(self.staging).items() if rel not in self.deferred}
        for rel, info in self.deferred.items():
            rec = self.build_of(rel)
            local[rel] = rec["size"] if rec else int(info.get("estimated_bytes", 0))
        return dict(sorted(local.items()))

    def same(self, rel: str, size: int, remote: RemoteFile) -> bool:
        if rel in self.deferred:
            rec = self.build_of(rel)
            if rec is None or remote.size != rec["size"]:
                return False
            if remote.sha256:
                return remote.sha256 == rec["sha256"]
            return remote.blob_id is None or remote.blob_id == rec.get("blob_id")
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


def batch_name(rel: str, order: Sequence[str] = BATCH_ORDER) -> str:
    top = rel.split("/", 1)[0]
    return top if "/" in rel and top in order else "card"


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


def deferred_groups(files: list[str], hashes: LocalHashes, budget: int) -> list[list[str]]:
    """The deferred shards among `files` in upload groups of at most `budget` planned bytes (one shard at least)."""
    groups: list[list[str]] = []
    acc = 0
    for rel in (f for f in files if f in hashes.deferred):
        size = int(hashes.deferred[rel].get("estimated_bytes", 0))
        if groups and acc + size <= budget:
            groups[-1].append(rel)
            acc += size
        else:
            groups.append([rel])
            acc = size
    return groups


def plan_upload(
    repo_id: str,
    staging: Path,
    remote: dict[str, RemoteFile] | None,
    hashes: LocalHashes | None = None,
    build_batch_bytes: int = BUILD_BATCH_BYTES,
    batch_order: Sequence[str] = BATCH_ORDER,
) -> UploadPlan:
    """What an upload of `staging` has to do, given the remote files (None: unknown, assumed empty).

    Files go up one top-level folder of `batch_order` at a time, in that order; files at the root
    and in other folders form the last batch, "card"."""
    hashes = hashes or LocalHashes(staging)
    local = hashes.files()
    known = remote is not None
    remote = remote or {}
    upload, unchanged = [], []
    for rel, size in local.items():
        r = remote.get(rel)
        (unchanged if r is not None and hashes.same(rel, size, r) else upload).append(rel)
    delete = sorted(p for p in remote if p not in local and p not in layout.HUB_MANAGED)
    groups: dict[str, list[str]] = {}
    for rel in upload:
        groups.setdefault(batch_name(rel, batch_order), []).append(rel)
    batches = []
    for name in (*[b for b in batch_order if b != "card"], "card"):
        files = sorted(groups.get(name, []))
        if files:
            built = deferred_groups(files, hashes, build_batch_bytes)
            rest = len(files) > sum(len(g) for g in built)  # files on disk beside the deferred shards
            batch = Batch(name, files, sum(local[f] for f in files), _patterns(files, local))
            batch.groups = len(built) + rest if built else 0
            batches.append(batch)
    return UploadPlan(repo_id, local, known, sorted(upload), sorted(unchanged), delete, batches)


def verify(staging: Path, remote: dict[str, RemoteFile], hashes: LocalHashes | None = None) -> Verification:
    """Compare the remote file list (paths, sizes, hashes) with staging."""
    hashes = hashes or LocalHashes(staging)
    local = hashes.files()
    remote = {p: r for p, r in remote.items() if p not in layout.HUB_MANAGED}
    v = Verification(remote_files=len(remote))
    v.missing = sorted(p for p in local if p not in remote)
    v.extra = sorted(p for p in remote if p not in local)
    v.different = sorted(p for p in local if p in remote and not hashes.same(p, local[p], remote[p]))
    return v


class HubClient:
    """One repository on the Hub (a dataset unless `repo_type` says otherwise), through an `HfApi`-like
    object already holding the token; `batch_order` names the top-level folders uploaded first, in order."""

    def __init__(
        self,
        api: Any,
        repo_id: str,
        token: str | None,
        private: bool = True,
        log: Callable[[str], None] = lambda _msg: None,
        repo_type: str = REPO_TYPE,
        batch_order: Sequence[str] = BATCH_ORDER,
    ):
        self.api = api
        self.repo_id = repo_id
        self._token = token
        self.private = private
        self.log = log
        self.repo_type = repo_type
        self.batch_order = tuple(batch_order)

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

    def _upload(self, staging: Path, allow_patterns: list[str], what: str, message: str) -> str:
        info = self._call(
            f"uploading {what}",
            self.api.upload_folder,
            repo_id=self.repo_id,
            repo_type=self.repo_type,
            folder_path=str(staging),
            allow_patterns=allow_patterns,
            ignore_patterns=list(IGNORE_PATTERNS),
            commit_message=message,
        )
        return str(getattr(info, "commit_url", None) or getattr(info, "oid", None) or info)

    def _upload_deferred(
        self,
        staging: Path,
        batch: Batch,
        files: list[str],
        hashes: LocalHashes,
        commit_message: str,
        build_batch_bytes: int,
    ) -> list[str]:
        """Build the deferred shards `files` a group at a time, upload each group, delete it."""
        groups = deferred_groups(files, hashes, build_batch_bytes)
        commits = []
        for k, group in enumerate(groups, 1):
            built: list[staging_mod.BuiltShard] = []
            try:
                for rel in group:
                    built.append(staging_mod.build_deferred_shard(staging, rel))
                # What each build produced: a later run compares it with the Hub's copy without building.
                staging_mod.record_built(staging, built)
                hashes.built = staging_mod.read_built_record(staging)
                size = sum(b.size for b in built)
                self.log(
                    f"uploading {batch.name} {k}/{len(groups)}: {len(group)} deferred shards built, {size:,} bytes"
                )
                commits.append(
                    self._upload(
                        staging,
                        [glob.escape(rel) for rel in group],
                        f"{batch.name} {k}/{len(groups)}",
                        f"{commit_message} ({batch.name} {k}/{len(groups)})",
                    )
                )
            except staging_mod.StagingError as exc:
                raise HubError(str(exc), retryable=False) from None
            finally:
                for rel in group:  # never more than one group on disk, whatever happened
                    (staging / rel).unlink(missing_ok=True)
                for b in built:
                    b.path.unlink(missing_ok=True)
        return commits

    def remote_files(self, missing_ok: bool = False) -> dict[str, RemoteFile]:
        """Every file in the repository; {} when it does not exist and `missing_ok`."""
        from huggingface_hub.errors import RepositoryNotFoundError  # noqa: PLC0415
        from huggingface_hub.hf_api import RepoFile  # noqa: PLC0415

        def listing() -> dict[str, RemoteFile]:
            try:
                entries = list(self.api.list_repo_tree(self.repo_id, repo_type=self.repo_type, recursive=True))
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

    def plan(
        self, staging: Path, hashes: LocalHashes | None = None, build_batch_bytes: int = BUILD_BATCH_BYTES
    ) -> UploadPlan:
        return plan_upload(
            self.repo_id, staging, self.remote_files(missing_ok=True), hashes, build_batch_bytes, self.batch_order
        )

    def publish(self, staging: Path, commit_message: str, build_batch_bytes: int = BUILD_BATCH_BYTES) -> PublishResult:
        """Create the repo if needed, upload what differs (building deferred shards a group of at most
        `build_batch_bytes` at a time), delete what staging dropped, then verify."""
        self._call(
            "creating the repository",
            self.api.create_repo,
            self.repo_id,
            repo_type=self.repo_type,
            private=self.private,
            exist_ok=True,
        )
        hashes = LocalHashes(staging)
        plan = self.plan(staging, hashes, build_batch_bytes)
        self.log(
            f"{self.repo_id}: {len(plan.unchanged)} files already on the Hub, {len(plan.upload)} to upload "
            f"({plan.upload_bytes:,} bytes) in {len(plan.batches)} batch(es), {len(plan.delete)} to delete"
        )
        commits = []
        for batch in plan.batches:
            deferred = [f for f in batch.files if f in hashes.deferred]
            if deferred:
                commits += self._upload_deferred(staging, batch, deferred, hashes, commit_message, build_batch_bytes)
                rest = [f for f in batch.files if f not in hashes.deferred]
                if not rest:
                    continue
                batch = Batch(batch.name, rest, sum(plan.local[f] for f in rest), [glob.escape(f) for f in rest])
            self.log(f"uploading {batch.name}: {len(batch.files)} files, {batch.bytes:,} bytes")
            commits.append(self._upload(staging, batch.allow_patterns, batch.name, f"{commit_message} ({batch.name})"))
        if plan.delete:
            self.log(f"deleting {len(plan.delete)} remote files staging no longer has")
            info = self._call(
                "deleting stale files",
                self.api.delete_files,
                repo_id=self.repo_id,
                repo_type=self.repo_type,
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
