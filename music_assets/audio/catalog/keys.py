"""Source keys (`source_key`: a slug of the stem and a hash of the root-relative path) and content hashes."""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata


def content_hash(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


KEY_SLUG_CHARS = 48  # the slug part of a source key, at most
KEY_HASH_CHARS = 6
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
LEGACY_KEY = re.compile(r"^[0-9a-f]{16}$")  # the ids before readable keys: hash of path and bytes


def slug(text: str) -> str:
    """Lower-case ASCII letters and digits joined by single dashes (accents dropped); "" if none."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _NOT_SLUG.sub("-", ascii_text.lower()).strip("-")[:KEY_SLUG_CHARS].strip("-")


def source_key(rel_path: str, salt: str = "") -> str:
    """A source's id and partition key: the slug of its file stem and a short hash of its
    root-relative path (`salt`, when given, goes into the hash too); safe as a file name."""
    from music_assets.seeding import stable_id  # noqa: PLC0415

    stem = slug(os.path.splitext(rel_path.rsplit("/", 1)[-1])[0]) or "track"
    digest = stable_id("audio-source-path", rel_path, salt, length=KEY_HASH_CHARS)
    return f"{stem}-{digest}"
