"""The two ACE-Step trainer layouts of a split folder, written exactly as the trainers read them.

ACE-Step v1 (`convert2hf_dataset.py` + `trainer.py --dataset_path`):
    <stem>.flac | <stem>.mp3      the audio (mp3: 320 kbps CBR, for the upstream converter, which globs *.mp3)
    <stem>_prompt.txt             the tags joined with ", " (the converter splits on ", ")
    <stem>_lyrics.txt             the lyrics, or [Instrumental]
  and beside the split folders, the Hugging Face dataset its converter builds (`save_to_disk`),
  one row per track and repeat, columns keys (the stem), filename (the audio's absolute path),
  tags (list), speaker_emb_path (""), norm_lyrics, recaption ({}): the trainer's
  `Text2MusicDataset` reads it with `load_from_disk` and the audio with torchaudio.

ACE-Step 1.5 (the Gradio "LoRA Training" tab's dataset scan, `scan_directory`):
    <stem>.flac
    <stem>.lyrics.txt             the lyrics, or [Instrumental]
    <stem>.caption.txt            the caption sentence
    <stem>.json                   {"caption", "bpm" (int), "keyscale" ("Eb major"), "timesignature" ("4"),
                                  "language" ("instrumental" or a code), "is_instrumental"}
    key_bpm.csv                   File,Artist,Title,BPM,Key,Camelot (the Key-BPM-Finder export the
                                  tutorial uses; File is the audio's file name)
  The scan walks sub-folders, so each split is its own folder and a trainer is pointed at one.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from music_assets.io import write_bytes, write_text

V1, V15 = "ace_step_v1", "ace_step_v15"
V1_COLUMNS = ("keys", "filename", "tags", "speaker_emb_path", "norm_lyrics", "recaption")
V15_JSON_KEYS = ("caption", "bpm", "keyscale", "timesignature", "language", "is_instrumental")
CSV_NAME = "key_bpm.csv"
CSV_HEADER = ("File", "Artist", "Title", "BPM", "Key", "Camelot")
AUDIO_FORMATS = ("flac", "mp3")
TAG_SEPARATOR = ", "


class LayoutError(RuntimeError):
    pass


def link_or_encode(src: Path, dest: Path, audio_format: str) -> None:
    """FLAC: a hard link to the prepared file (same bytes, no copy). MP3: encoded at 320 kbps CBR."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if audio_format == "flac":
        try:
            os.link(src, dest)
        except OSError as exc:
            raise LayoutError(
                f"cannot hard-link {src} to {dest} ({exc.strerror or exc}): the training set "
                "must be on the same filesystem as the prepared sources"
            ) from None
        return
    import soundfile as sf  # noqa: PLC0415

    audio, sr = sf.read(src, dtype="float32", always_2d=True)
    buf = io.BytesIO()
    # libsndfile's LAME at compression 0 in constant mode is 320 kbps
    sf.write(buf, audio, sr, format="MP3", subtype="MPEG_LAYER_III", compression_level=0.0, bitrate_mode="CONSTANT")
    write_bytes(dest, buf.getvalue(), fsync=False)


def write_v1_track(folder: Path, track: dict[str, Any], audio_src: Path, audio_format: str) -> Path:
    audio = folder / f"{track['stem']}.{audio_format}"
    link_or_encode(audio_src, audio, audio_format)
    write_text(folder / f"{track['stem']}_prompt.txt", TAG_SEPARATOR.join(track["tags"]))
    write_text(folder / f"{track['stem']}_lyrics.txt", track["lyrics"])
    return audio


def v1_rows_from_files(folder: Path, final_folder: Path) -> list[dict[str, Any]]:
    """The rows ACE-Step v1's converter makes of a split folder (audio sorted by name), with
    `filename` where the folder will finally be."""
    rows = []
    for audio in sorted(p for p in folder.iterdir() if p.suffix.lstrip(".") in AUDIO_FORMATS):
        stem = audio.stem
        prompt = (folder / f"{stem}_prompt.txt").read_text(encoding="utf-8").strip()
        lyrics = (folder / f"{stem}_lyrics.txt").read_text(encoding="utf-8").strip()
        rows.append(
            {
                "keys": stem,
                "filename": str(final_folder / audio.name),
                "tags": prompt.split(TAG_SEPARATOR),
                "speaker_emb_path": "",
                "norm_lyrics": lyrics,
                "recaption": {},
            }
        )
    return rows


def write_v1_dataset(rows: list[dict[str, Any]], dest: Path, repeat: int) -> int:
    """`Dataset.from_list(rows * repeat).save_to_disk(dest)`, as the converter does; returns the row count."""
    from datasets import Dataset  # noqa: PLC0415

    if not rows:
        raise LayoutError(f"{dest}: no tracks for the Hugging Face dataset")
    ds = Dataset.from_list(rows * repeat)
    ds.save_to_disk(str(dest))
    return len(ds)


def write_v15_track(folder: Path, track: dict[str, Any], audio_src: Path) -> Path:
    audio = folder / f"{track['stem']}.flac"
    link_or_encode(audio_src, audio, "flac")
    write_text(folder / f"{track['stem']}.lyrics.txt", track["lyrics"])
    write_text(folder / f"{track['stem']}.caption.txt", track["caption"])
    meta = {
        "caption": track["caption"],
        "bpm": round(float(track["bpm"])),
        "keyscale": track["key"],
        "timesignature": str(track["timesignature"]),
        "language": track["language"],
        "is_instrumental": track["vocal"] != "vocal",
    }
    write_text(folder / f"{track['stem']}.json", json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return audio


def write_v15_csv(folder: Path, tracks: list[dict[str, Any]]) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for t in sorted(tracks, key=lambda t: t["stem"]):
        writer.writerow(
            [
                f"{t['stem']}.flac",
                t.get("artist") or "",
                t.get("title") or t["stem"],
                round(float(t["bpm"])),
                t["key"],
                t["camelot"],
            ]
        )
    return write_text(folder / CSV_NAME, buf.getvalue())


def read_v15_track(folder: Path, stem: str) -> dict[str, Any]:
    """What the 1.5 scan reads of one track (for the gates)."""
    return {
        "json": json.loads((folder / f"{stem}.json").read_text(encoding="utf-8")),
        "lyrics": (folder / f"{stem}.lyrics.txt").read_text(encoding="utf-8").strip(),
        "caption": (folder / f"{stem}.caption.txt").read_text(encoding="utf-8").strip(),
    }


def read_v15_csv(folder: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(folder / CSV_NAME, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)
