"""How the rudiment dataset scales: generation, Hub staging, token corpus and large-model training.

Sizes: each size is the `full` preset's mix of samples (every rudiment x P
players x 5 tempos x 8 and 16 beats) with P = size / 400 players, so the
per-sample work is the same at every size; `--full` adds the preset itself
(250 players, 100,000 samples). Each size is generated in a fresh process
with the domain code the assets run: `rudiments.dataset.generate_partition`
(performances, MIDI, per-partition labels), `audio.render.render_partitions`
on a `RenderPool` (FluidSynth, alignment, augmentation, FLAC; each partition
generated on a thread while the one before it renders, as in bench/generate.py), the four
audio gates of every partition (`render.check_partition`) and
`rudiments.labels.merge_labels` (rudiment_labels). Printed per size: wall
time, samples/s, audio s per wall s, peak RSS of the main process (after
rendering and at the end) and of the largest worker, bytes on disk per
sample; then the ratio of the largest size's per-sample time and peak memory
to the smallest's (targets: time within 10 %, memory flat).

Then, on the largest size:
- Hub staging (`publish.staging.stage` + `card.write_card` + `staging.sweep`,
  what `hf_staging` runs) with a file budget below its media count, so the
  media are embedded in parquet shards; prints the time, mode, shard count
  and sizes, the bytes it added on disk (hard links counted once), and the
  time `datasets.load_dataset(staging)` takes to open it (offline, in a
  temporary HF cache: as a map-style dataset, which converts the shards into
  the cache, and streaming) and the size of that cache;
- the same staging with `shard_storage=deferred` (plans only: the disk it
  adds), then `hf_dataset`'s upload of it (`HubClient.publish`) to a stand-in
  for the Hub that keeps only each file's hashes: the time, the commits, the
  most shard bytes on disk at once (one build group, `--build-batch-mb`), and
  whether every built shard is byte-identical to the local one;
- the `token_corpus` asset with `run_configs/token_corpus_large.yaml`
  (dg.materialize, in its own process: time and peak RSS);
- `base_model`'s training with `run_configs/base_model_large.yaml` (the large
  model, batch and optimizer) for `--train-steps` steps with a checkpoint
  halfway: the training process is SIGKILLed once the first checkpoint is on
  disk and started again, and must resume from it; prints training tokens/s.
  The bench cuts the validation set used at each checkpoint to
  `--val-sequences` (0: the whole split, as the asset does), because at this
  size a CPU evaluation of the whole split takes minutes per checkpoint.

Finally it extrapolates the largest size's per-sample time and disk to the
full preset (100,000 samples), staged locally and deferred, and compares the
disk with the free space.

Timings on a shared machine depend on what else runs (the load average is
printed). Run at low priority when others are working:

    nice -n 10 python bench/scale.py [--sizes 1000,4000] [--full] [--workers 0] [--keep DIR [--reuse]]
        [--file-budget N] [--shard-size-mb 500] [--build-batch-mb 2000] [--train-steps 4] [--val-sequences 64]
        [--skip-staging] [--skip-models]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FULL_SAMPLES = 100_000
SAMPLES_PER_PLAYER = 400  # 40 rudiments x 5 tempos x 2 lengths, the full preset per player
RUN_CONFIGS = ROOT / "music_assets" / "ml" / "run_configs"


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def disk_bytes(*roots: Path, seen: set | None = None) -> int:
    """Bytes allocated on disk under `roots`, each inode counted once (hard links are free)."""
    seen = set() if seen is None else seen
    total = 0
    for root in roots:
        if not root.exists():
            continue
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                st = os.lstat(os.path.join(dirpath, name))
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_blocks * 512
    return total


def _inodes(root: Path, exclude: Path) -> set:
    """(device, inode) of every file under `root` outside `exclude`."""
    out = set()
    for dirpath, dirs, files in os.walk(root):
        if Path(dirpath) == exclude:
            dirs[:] = []
            continue
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            out.add((st.st_dev, st.st_ino))
    return out


def _emit(result: dict) -> None:
    print("RESULT " + json.dumps(result), flush=True)


def _child(args: list[str], timeout: float | None = None) -> dict:
    """Run this script with `args` in a fresh process (its own peak RSS) and return its RESULT."""
    proc = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(
            f"bench child {args} failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return json.loads(lines[-1][len("RESULT ") :])


# ---------------------------------------------------------------- one size (child process)


def generate_size(data: Path, players: int, workers: int, seed: int) -> dict:
    from music_assets.audio import render
    from music_assets.rudiments import labels
    from music_assets.rudiments.constants import RUDIMENT_SLUGS
    from music_assets.rudiments.dataset import DatasetSettings, generate_partition
    from music_assets.rudiments.library import get_rudiment
    from music_assets.rudiments.profiles import generate_profiles

    settings = DatasetSettings.resolve("full", seed=seed, num_profiles=players)
    slugs = list(RUDIMENT_SLUGS)
    rss_start = _rss_mib()
    cpu_start = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])  # the imports: not per-sample work
    t0 = time.perf_counter()
    profiles = generate_profiles(settings.num_profiles, seed)
    n = 0

    def generate(slug: str) -> None:
        nonlocal n
        n += generate_partition(get_rudiment(slug), profiles, settings, data).samples.num_rows

    with render.RenderPool(workers) as pool:
        rendered = render.render_partitions(slugs, data, seed=seed, pool=pool, prepare=generate)
    render_wall = time.perf_counter() - t0
    rss_render = _rss_mib()
    run = rendered.run
    t1 = time.perf_counter()
    failed = [f"{slug}:{g.name}" for slug in slugs for g in render.check_partition(slug, data) if not g.passed]
    gates_wall = time.perf_counter() - t1
    t2 = time.perf_counter()
    summary = labels.merge_labels(slugs, data)
    labels_wall = time.perf_counter() - t2
    rud = data / "rudiments"
    parts = {
        "audio": disk_bytes(rud / "audio"),
        "midi": disk_bytes(rud / "midi"),
        "tables": disk_bytes(rud / "performances"),
        "labels": disk_bytes(rud / "labels"),
    }
    return {
        "players": players,
        "samples": n,
        "label_rows": summary.rows["samples"],
        "audio_seconds": run.audio_seconds,
        "workers": run.workers,
        "render_wall": render_wall,
        "gates_wall": gates_wall,
        "labels_wall": labels_wall,
        "worker_cpu": run.cpu_seconds,
        "main_cpu": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu_start,  # generation, planning, tables
        "rss_start": rss_start,
        "rss_render": rss_render,
        "rss_end": _rss_mib(),
        "rss_worker": run.peak_rss_mib,
        "disk": parts,
        "failed": failed,
        "load": os.getloadavg()[0],
    }


# ---------------------------------------------------------------- one partition (child process)

PROBE_SLUG = "flam_paradiddle_diddle"  # among the most strokes per sample


def partition_peak(data: Path, players: int, seed: int) -> dict:
    """Peak RSS of generating one partition of `players` x 10 samples (`generate_partition`) and
    then planning its render jobs (`render.plan_partition`, every job made and dropped), after a
    warm-up partition."""
    from music_assets.audio import render
    from music_assets.audio.presets import PRESET_NAMES
    from music_assets.audio.synthesis import DEFAULT_SOUNDFONTS
    from music_assets.rudiments.dataset import DatasetSettings, generate_partition
    from music_assets.rudiments.library import get_rudiment
    from music_assets.rudiments.profiles import generate_profiles

    settings = DatasetSettings.resolve("full", seed=seed, num_profiles=players)
    profiles = generate_profiles(settings.num_profiles, seed)
    # warm-up on one player's partition of another rudiment: Arrow's reader and thread pools start
    # on the first parquet read (about 16 MiB once), which is no partition's cost
    small = DatasetSettings.resolve("full", seed=seed, num_profiles=1)
    generate_partition(get_rudiment("flam"), profiles.head(1), small, data)
    sum(1 for _ in render.plan_partition("flam", data, list(DEFAULT_SOUNDFONTS), PRESET_NAMES, seed))
    rss0 = _rss_mib()
    t0 = time.perf_counter()
    samples = generate_partition(get_rudiment(PROBE_SLUG), profiles, settings, data).samples.num_rows
    generate_wall = time.perf_counter() - t0
    rss1 = _rss_mib()
    planned = render.plan_partition(PROBE_SLUG, data, list(DEFAULT_SOUNDFONTS), PRESET_NAMES, seed)
    jobs = sum(1 for _ in planned)
    return {
        "samples": samples,
        "jobs": jobs,
        "generate_wall": generate_wall,
        "rss_start": rss0,
        "generate_mib": rss1 - rss0,
        "plan_mib": _rss_mib() - rss1,
    }


# ---------------------------------------------------------------- staging (child process)


def stage_set(data: Path, file_budget: int, shard_size_mb: float, storage: str) -> dict:
    # the steps of the hf_staging asset (defs/publish.py), through the publish package's public functions
    from music_assets.io import sha256_file
    from music_assets.publish import layout
    from music_assets.publish.card import CardSettings, write_card
    from music_assets.publish.staging import StagingSettings, expected_files, stage, sweep

    staging = data / "hf_staging"
    before = disk_bytes(data)
    t0 = time.perf_counter()
    settings = StagingSettings(file_budget=file_budget, shard_size_mb=shard_size_mb, shard_storage=storage)
    staged = stage(data, staging, settings)
    card = write_card(staged, CardSettings())
    sweep(staging, expected_files(staged, card.files))
    wall = time.perf_counter() - t0
    shards = sorted(p for p in (staging / "data").rglob("*.parquet")) if (staging / "data").is_dir() else []
    files = [p for p in staging.rglob("*") if p.is_file()]
    return {
        "wall": wall,
        "storage": staged.shard_storage,
        "plans": len(layout.deferred_shards(staging)),
        "shard_sha": {p.relative_to(staging).as_posix(): sha256_file(p) for p in shards},
        "mode": staged.mode,
        "rows": staged.table.num_rows,
        "media_files": staged.media_files,
        "media_bytes": staged.media_bytes,
        "shards": len(shards),
        "shard_mb": [p.stat().st_size / 1e6 for p in shards],
        "files": len(files),
        "apparent_bytes": sum(p.stat().st_size for p in files),
        "added_disk": disk_bytes(data) - before,  # what staging added to the data dir (links count 0)
        # the staging folder itself (hard links to the media are not counted: they cost nothing)
        "staging_disk": disk_bytes(staging, seen=_inodes(data, exclude=staging)),
        "rss": _rss_mib(),
    }


class HashingHub:
    """A stand-in for `huggingface_hub.HfApi` that keeps only the size and hashes of each uploaded file: the
    bench measures building the deferred shards and the disk they take, not the network."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[int, str, str]] = {}
        self.peak_on_disk = 0  # bytes of sample shards in staging at any upload
        self.uploads = 0

    def create_repo(self, repo_id: str, **_kw):
        return repo_id

    def list_repo_tree(self, repo_id: str, **_kw):
        from huggingface_hub.hf_api import RepoFile

        for path, (size, sha, oid) in sorted(self.files.items()):
            yield RepoFile(path=path, size=size, oid=oid, lfs={"size": size, "oid": sha, "pointerSize": 134})

    def upload_folder(self, *, folder_path: str, allow_patterns=None, ignore_patterns=None, **_kw):
        import hashlib
        from types import SimpleNamespace

        from huggingface_hub.utils import filter_repo_objects

        root = Path(folder_path)
        on_disk = list((root / "data").rglob("*.parquet")) if (root / "data").is_dir() else []
        self.peak_on_disk = max(self.peak_on_disk, sum(p.stat().st_size for p in on_disk))
        every = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        for rel in filter_repo_objects(every, allow_patterns=allow_patterns, ignore_patterns=ignore_patterns):
            data = (root / rel).read_bytes()
            oid = hashlib.sha1(f"blob {len(data)}\0".encode() + data, usedforsecurity=False).hexdigest()
            self.files[rel] = (len(data), hashlib.sha256(data).hexdigest(), oid)
        self.uploads += 1
        return SimpleNamespace(commit_url=f"local/{self.uploads}")

    def delete_files(self, repo_id: str, delete_patterns: list[str], **_kw):
        import fnmatch

        for path in [p for p in self.files if any(fnmatch.fnmatchcase(p, pat) for pat in delete_patterns)]:
            del self.files[path]


def publish_deferred(staging: Path, build_batch_mb: float) -> dict:
    """hf_dataset's upload (`HubClient.publish`) of a deferred staging folder to a HashingHub."""
    from music_assets.publish.hub import HubClient

    api = HashingHub()
    t0 = time.perf_counter()
    result = HubClient(api, "bench/rudiments", "no-token").publish(
        staging, "bench", build_batch_bytes=int(build_batch_mb * 1e6)
    )
    return {
        "wall": time.perf_counter() - t0,
        "verified": result.verification.ok,
        "commits": len(result.commits),
        "peak_on_disk": api.peak_on_disk,
        "left_on_disk": len(list((staging / "data").rglob("*.parquet"))) if (staging / "data").is_dir() else 0,
        "shard_sha": {rel: sha for rel, (_n, sha, _o) in api.files.items() if rel.startswith("data/")},
        "uploaded_bytes": sum(n for n, _s, _o in api.files.values()),
        "rss": _rss_mib(),
    }


def load_staged(staging: Path, cache: Path) -> dict:
    os.environ.update(HF_HOME=str(cache), HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1")
    import datasets

    t0 = time.perf_counter()
    stream = datasets.load_dataset(str(staging), streaming=True)
    first = next(iter(stream["train"]))
    stream_wall = time.perf_counter() - t0
    t1 = time.perf_counter()
    ds = datasets.load_dataset(str(staging))
    map_wall = time.perf_counter() - t1
    rows = {k: v.num_rows for k, v in ds.items()}
    t2 = time.perf_counter()
    sample = ds["train"][0]
    audio = sample["audio"]
    decode = time.perf_counter() - t2
    arr = audio["array"] if isinstance(audio, dict) else audio.get_all_samples().data  # datasets 3 / 4+
    return {
        "stream_first_row": stream_wall,
        "first_keys": sorted(first)[:6],
        "map_wall": map_wall,
        "rows": rows,
        "decode_first": decode,
        "first_audio_frames": int(getattr(arr, "shape", [len(arr)])[-1]),
        "cache_bytes": disk_bytes(cache),
        "rss": _rss_mib(),
    }


# ---------------------------------------------------------------- models (child processes)


def _yaml_config(name: str, op: str) -> dict:
    import yaml

    return yaml.safe_load((RUN_CONFIGS / name).read_text())["ops"][op]["config"]


def corpus_set(data: Path) -> dict:
    os.environ["MUSIC_ASSETS_DATA_DIR"] = str(data)
    import dagster as dg
    import yaml

    from music_assets.defs.models.training import token_corpus

    run_config = yaml.safe_load((RUN_CONFIGS / "token_corpus_large.yaml").read_text())
    rss0 = _rss_mib()
    t0 = time.perf_counter()
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([token_corpus], instance=instance, run_config=run_config)
    wall = time.perf_counter() - t0
    assert result.success
    summary = json.loads((data / "models" / "corpus" / "corpus.json").read_text())
    tokens = sum(s["tokens"] for s in summary["splits"].values())
    return {
        "wall": wall,
        "tokens": tokens,
        "sequences": sum(s["sequences"] for s in summary["splits"].values()),
        "truncated": sum(s["truncated"] for s in summary["splits"].values()),
        "max_seq_len": summary["max_seq_len"],
        "rss_before": rss0,
        "rss": _rss_mib(),
        "token_bytes": sum((data / "models" / "corpus" / f"{s}.tokens.npy").stat().st_size for s in summary["splits"]),
    }


def train_large(data: Path, steps: int, val_sequences: int, threads: int) -> dict:
    """base_model's training (workflows.train_base's steps) with the large run config, `steps` steps."""
    import dataclasses

    from music_assets.defs.models.training import BaseModelConfig
    from music_assets.ml import training
    from music_assets.ml import workflows as wf
    from music_assets.ml.corpus import Corpus
    from music_assets.ml.model import ModelConfig

    cfg = BaseModelConfig(**_yaml_config("base_model_large.yaml", "base_model"))
    train_cfg = dataclasses.replace(
        cfg.train_config(), max_steps=steps, checkpoint_every=max(1, steps // 2), num_threads=threads
    )
    corpus = Corpus(data / "models" / "corpus")
    train, val = corpus.split("train").sequences(), corpus.split("validation").sequences()
    if val_sequences > 0:
        val = val[:val_sequences]
    model_cfg = ModelConfig(
        vocab_size=len(corpus.vocab),
        max_seq_len=corpus.max_seq_len,
        d_model=cfg.d_model,
        n_layers=cfg.n_layers,
        n_heads=cfg.n_heads,
        d_ff=cfg.d_ff,
        dropout=cfg.dropout,
    )
    model = wf.init_model(model_cfg, train_cfg.seed, corpus.vocab)
    counted = {"tokens": 0, "seconds": 0.0}
    make_batch = training.make_batch

    class TimedTrainer(training.Trainer):
        def _train_step(self) -> float:
            t = time.perf_counter()
            loss = super()._train_step()
            counted["seconds"] += time.perf_counter() - t
            return loss

    def counting_batch(seqs, pad_id, predicted=None):  # the tokens a step trains on (inputs that are not padding)
        inputs, targets = make_batch(seqs, pad_id, predicted)
        counted["tokens"] += int((inputs != pad_id).sum())
        return inputs, targets

    training.make_batch = counting_batch
    log: list[str] = []
    result = TimedTrainer(
        model,
        train,
        val,
        corpus.vocab,
        train_cfg,
        data / "models" / "base_large" / "checkpoints",
        watch_prompts=wf.prompts_for(val, train_cfg.watch_samples, corpus.vocab),
        fingerprint_extra={"model": model_cfg.to_dict(), "kind": "base", "smooth_init": True},
        log=lambda m: (log.append(m), print(m, flush=True)),
    ).fit()
    return {
        "parameters": model.num_parameters(),
        "train_sequences": len(train),
        "val_sequences": len(val),
        "resumed_from": result.resumed_from,
        "final_step": result.final_step,
        "steps_here": len([s for s in result.history["train"] if s[0] > (result.resumed_from or 0)]),
        "tokens": counted["tokens"],
        "train_seconds": counted["seconds"],
        "fit_seconds": result.seconds,
        "batch_size": train_cfg.batch_size,
        "threads": threads,
        "rss": _rss_mib(),
        "log": log[-4:],
    }


def train_kill_resume(data: Path, steps: int, val_sequences: int, threads: int) -> dict:
    """Start training, SIGKILL it once the first checkpoint is on disk, start it again: it must resume."""
    from music_assets.ml import checkpoints as ck

    root = data / "models" / "base_large" / "checkpoints"
    shutil.rmtree(root, ignore_errors=True)
    args = [__file__, "--child-train", str(data), str(steps), str(val_sequences), str(threads)]
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed_at = None
    while proc.poll() is None:
        done = []
        for _, d in ck.list_checkpoint_dirs(root):
            try:
                done.append(ck.verify_checkpoint(d).step)
            except Exception:  # noqa: BLE001 - still being written
                pass
        if done:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed_at = max(done)
            break
        time.sleep(0.5)
    first_wall = time.perf_counter() - t0
    if killed_at is None:
        raise SystemExit(f"training ended before its first checkpoint could be killed:\n{proc.stdout.read()[-3000:]}")
    second = _child(["--child-train", str(data), str(steps), str(val_sequences), str(threads)])
    second["killed_after_step"] = killed_at
    second["first_wall"] = first_wall
    return second


# ---------------------------------------------------------------- the report


def fmt_mb(b: float) -> str:
    return f"{b / 1e6:,.0f} MB" if b < 1e9 else f"{b / 1e9:,.2f} GB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,4000", help="comma-separated sample counts (default 1000,4000)")
    ap.add_argument("--full", action="store_true", help="add the full preset (100,000 samples, hours, ~60+ GB)")
    ap.add_argument("--workers", type=int, default=0, help="rendering processes (0: one per core)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, default=None, help="work in this folder and keep the largest set")
    ap.add_argument("--file-budget", type=int, default=0, help="staging file budget (0: the media count / 2)")
    ap.add_argument("--shard-size-mb", type=float, default=500.0, help="embedded shard size (default 500)")
    ap.add_argument("--build-batch-mb", type=float, default=2000.0, help="deferred shards built at once (MB)")
    ap.add_argument("--train-steps", type=int, default=4, help="large-model steps (checkpoint halfway)")
    ap.add_argument("--val-sequences", type=int, default=64, help="validation sequences per checkpoint (0: all)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: one per core)")
    ap.add_argument("--reuse", action="store_true", help="with --keep: reuse sizes generated by an earlier run")
    ap.add_argument("--skip-staging", action="store_true")
    ap.add_argument("--skip-models", action="store_true")
    args = ap.parse_args(argv)

    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if args.full:
        sizes.append(FULL_SAMPLES)
    threads = args.threads or os.cpu_count() or 1
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    base.mkdir(parents=True, exist_ok=True)
    print(
        f"sizes {sizes} ({SAMPLES_PER_PLAYER} samples per player: 40 rudiments x 5 tempos x 8/16 beats); "
        f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}; work dir {base}",
        flush=True,
    )
    results: list[dict] = []
    try:
        for size in sizes:
            players = max(1, round(size / SAMPLES_PER_PLAYER))
            data = base / f"size-{size}"
            saved = data / "bench-result.json"
            if args.reuse and saved.is_file():  # measured by an earlier run with --keep
                r = json.loads(saved.read_text())
            else:
                shutil.rmtree(data, ignore_errors=True)
                data.mkdir()
                r = _child(["--child-generate", str(data), str(players), str(args.workers), str(args.seed)])
                r["size"], r["data"] = size, str(data)
                saved.write_text(json.dumps(r))
            results.append(r)
            n = r["samples"]
            disk = sum(r["disk"].values())
            print(
                f"{n:>7} samples ({players} players): {r['render_wall']:7.1f} s generate+render "
                f"({n / r['render_wall']:.1f} samples/s, {r['audio_seconds'] / r['render_wall']:.0f} audio s/s, "
                f"{r['audio_seconds'] / n:.2f} s each), gates {r['gates_wall']:.1f} s, "
                f"labels {r['labels_wall']:.1f} s; "
                f"peak RSS main {r['rss_render']:.0f} MiB after rendering / {r['rss_end']:.0f} MiB at the end, "
                f"worker {r['rss_worker']:.0f} MiB; disk {disk / n / 1e3:.0f} kB/sample "
                f"(audio {r['disk']['audio'] / n / 1e3:.0f}, MIDI {r['disk']['midi'] / n / 1e3:.1f}, "
                f"tables {(r['disk']['tables'] + r['disk']['labels']) / n / 1e3:.1f}); "
                f"gates {'all passed' if not r['failed'] else 'FAILED ' + ', '.join(r['failed'][:5])}; "
                f"load {r['load']:.1f}",
                flush=True,
            )
            if size != sizes[-1] and args.keep is None:
                shutil.rmtree(data, ignore_errors=True)
        small, large = results[0], results[-1]

        def per_sample(r: dict) -> float:
            return (r["render_wall"] + r["gates_wall"] + r["labels_wall"]) / r["samples"]

        def cpu_per_sample(r: dict) -> float:  # every process; what a shared machine's load does not change
            return (r["worker_cpu"] + r.get("main_cpu", 0.0)) / r["samples"]

        if len(results) > 1:
            print(
                f"ratio {large['samples']} / {small['samples']} samples: time per sample "
                f"{per_sample(large) / per_sample(small):.3f} wall (load {small['load']:.1f} / {large['load']:.1f}), "
                f"{cpu_per_sample(large) / cpu_per_sample(small):.3f} CPU "
                f"({cpu_per_sample(small) * 1000:.0f} / {cpu_per_sample(large) * 1000:.0f} ms per sample; "
                f"target within 1.10); peak RSS main {large['rss_end'] / small['rss_end']:.3f} "
                f"({large['rss_end'] - small['rss_end']:+.0f} MiB over {large['rss_start']:.0f} MiB of imports; "
                f"after rendering {large['rss_render'] / small['rss_render']:.3f}), worker "
                f"{large['rss_worker'] / small['rss_worker']:.3f} (target flat: 1.0)"
            )
        if len(results) > 2:  # past the start-up costs that the smallest size carries most of
            prev = results[-2]
            print(
                f"ratio {large['samples']} / {prev['samples']} samples: CPU per sample "
                f"{cpu_per_sample(large) / cpu_per_sample(prev):.3f}, peak RSS main "
                f"{large['rss_end'] / prev['rss_end']:.3f} ({large['rss_end'] - prev['rss_end']:+.0f} MiB; after "
                f"rendering {large['rss_render'] / prev['rss_render']:.3f}), worker "
                f"{large['rss_worker'] / prev['rss_worker']:.3f}"
            )
        # a partition holds samples / 40 of them; the full preset's have 2,500: what one costs the main
        # process, at the largest size's partition and at the full preset's
        probes = []
        for players in sorted({max(1, large["players"]), FULL_SAMPLES // SAMPLES_PER_PLAYER}):
            folder = base / f"partition-{players}"
            shutil.rmtree(folder, ignore_errors=True)
            probes.append(_child(["--child-partition", str(folder), str(players), str(args.seed)]))
            shutil.rmtree(folder, ignore_errors=True)
        for p in probes:
            print(
                f"one partition of {p['samples']} samples ({PROBE_SLUG}): generating it {p['generate_wall']:.1f} s, "
                f"+{p['generate_mib']:.1f} MiB peak RSS; planning its {p['jobs']} render jobs "
                f"+{p['plan_mib']:.1f} MiB (over {p['rss_start']:.0f} MiB)"
            )
        if len(probes) > 1:
            a, b = probes[0], probes[-1]
            peak_a, peak_b = (p["rss_start"] + p["generate_mib"] + p["plan_mib"] for p in (a, b))
            print(
                f"ratio {b['samples']} / {a['samples']}-sample partition: peak RSS main {peak_b / peak_a:.3f} "
                f"({peak_a:.0f} / {peak_b:.0f} MiB; target flat: 1.0)"
            )
        data = Path(large["data"])
        staged = loaded = None
        if not args.skip_staging:
            media = 2 * large["samples"]
            budget = args.file_budget or media // 2
            staged = _child(["--child-stage", str(data), str(budget), str(args.shard_size_mb), "local"])
            sizes_mb = staged["shard_mb"]
            print(
                f"staging {staged['rows']} samples, file budget {budget} < {media} media files: "
                f"{staged['wall']:.1f} s, mode {staged['mode']}, {staged['shards']} data shards "
                f"({min(sizes_mb, default=0):.0f}-{max(sizes_mb, default=0):.0f} MB, "
                f"{sum(sizes_mb):,.0f} MB in all), {staged['files']} files, "
                f"{fmt_mb(staged['apparent_bytes'])} apparent, {fmt_mb(staged['added_disk'])} added on disk "
                f"(media {fmt_mb(staged['media_bytes'])}); peak RSS {staged['rss']:.0f} MiB",
                flush=True,
            )
            cache = base / "hf-cache"
            shutil.rmtree(cache, ignore_errors=True)
            loaded = _child(["--child-load", str(data / "hf_staging"), str(cache)])
            shutil.rmtree(cache, ignore_errors=True)
            print(
                f"datasets.load_dataset(staging): streaming, first row {loaded['stream_first_row']:.1f} s; "
                f"map-style {loaded['map_wall']:.1f} s ({loaded['rows']}), decoding the first audio "
                f"{loaded['decode_first'] * 1000:.0f} ms ({loaded['first_audio_frames']} frames); "
                f"its cache {fmt_mb(loaded['cache_bytes'])}; peak RSS {loaded['rss']:.0f} MiB",
                flush=True,
            )
            # Deferred storage: the plans alone, then the upload builds each shard and deletes it.
            planned = _child(["--child-stage", str(data), str(budget), str(args.shard_size_mb), "deferred"])
            print(
                f"staging with shard_storage=deferred: {planned['wall']:.1f} s, {planned['plans']} shard plans; "
                f"the staging folder takes {fmt_mb(planned['staging_disk'])} on disk (plans, auxiliary tables, "
                f"card; {fmt_mb(staged['staging_disk'])} with local shards); peak RSS {planned['rss']:.0f} MiB",
                flush=True,
            )
            pushed = _child(["--child-publish", str(data / "hf_staging"), str(args.build_batch_mb)])
            same = pushed["shard_sha"] == staged["shard_sha"]
            print(
                f"hf_dataset upload of the deferred staging (to a hashing stand-in for the Hub, build groups of "
                f"{args.build_batch_mb:,.0f} MB): {pushed['wall']:.1f} s, {pushed['commits']} commits, "
                f"{fmt_mb(pushed['uploaded_bytes'])} sent, at most {fmt_mb(pushed['peak_on_disk'])} of shards on "
                f"disk at once, {pushed['left_on_disk']} left after; verified {pushed['verified']}; the "
                f"{len(pushed['shard_sha'])} shards built are {'byte-identical to' if same else 'DIFFERENT FROM'} "
                f"the local ones; peak RSS {pushed['rss']:.0f} MiB",
                flush=True,
            )
            if not (same and pushed["verified"] and pushed["left_on_disk"] == 0):
                print("DEFERRED UPLOAD FAILED")
                return 1
        if not args.skip_models:
            c = _child(["--child-corpus", str(data)])
            print(
                f"token_corpus (token_corpus_large.yaml, max_seq_len {c['max_seq_len']}): {c['wall']:.1f} s, "
                f"{c['sequences']} sequences, {c['tokens']:,} tokens ({c['truncated']} truncated), "
                f"{fmt_mb(c['token_bytes'])} of tokens; peak RSS {c['rss']:.0f} MiB "
                f"({c['rss_before']:.0f} MiB before the run)",
                flush=True,
            )
            t = train_kill_resume(data, args.train_steps, args.val_sequences, threads)
            print(
                f"base_model training (base_model_large.yaml, {t['parameters']:,} parameters, batch "
                f"{t['batch_size']}, {t['threads']} threads): killed after the step-{t['killed_after_step']} "
                f"checkpoint ({t['first_wall']:.0f} s), restarted: resumed from step {t['resumed_from']}, "
                f"ended at step {t['final_step']}; {t['tokens'] / max(t['train_seconds'], 1e-9):,.0f} tokens/s "
                f"({t['tokens']:,} tokens in {t['steps_here']} steps, {t['train_seconds']:.1f} s; with "
                f"checkpoints {t['fit_seconds']:.1f} s, {t['val_sequences']} validation sequences); "
                f"peak RSS {t['rss']:.0f} MiB",
                flush=True,
            )
            if t["resumed_from"] != t["killed_after_step"]:
                print(f"RESUME FAILED: expected step {t['killed_after_step']}, got {t['resumed_from']}")
                return 1

        # extrapolation to the full preset, from the largest size measured
        n = large["samples"]
        k = FULL_SAMPLES / n
        gen_disk = sum(large["disk"].values()) * k
        stage_disk = (staged["added_disk"] * k) if staged else 0.0
        plan_disk = (planned["staging_disk"] * k + args.build_batch_mb * 1e6) if staged else 0.0
        audio_disk = large["disk"]["audio"] * k
        free = shutil.disk_usage(base).free
        print(
            f"extrapolated to {FULL_SAMPLES:,} samples (x{k:.1f}): generate+render+gates+labels "
            f"{per_sample(large) * FULL_SAMPLES / 3600:.1f} h at this load, "
            f"{cpu_per_sample(large) * FULL_SAMPLES / 3600 / large['workers']:.1f} h on {large['workers']} idle cores "
            f"(CPU time / cores); disk {fmt_mb(gen_disk)} generated (audio "
            f"{fmt_mb(audio_disk)}) + {fmt_mb(stage_disk)} staged locally = {fmt_mb(gen_disk + stage_disk)}"
            + (f" + {fmt_mb(loaded['cache_bytes'] * k)} datasets cache" if loaded else "")
            + (
                f"; with deferred shards {fmt_mb(gen_disk + plan_disk)} at most (staging {fmt_mb(plan_disk)} "
                "with one build group)"
                if staged
                else ""
            )
            + f"; free now {fmt_mb(free)}"
        )
        return 0 if not any(r["failed"] for r in results) else 1
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


def _child_main(argv: list[str]) -> int:
    kind, rest = argv[0], argv[1:]
    if kind == "--child-generate":
        _emit(generate_size(Path(rest[0]), int(rest[1]), int(rest[2]), int(rest[3])))
    elif kind == "--child-partition":
        _emit(partition_peak(Path(rest[0]), int(rest[1]), int(rest[2])))
    elif kind == "--child-stage":
        _emit(stage_set(Path(rest[0]), int(rest[1]), float(rest[2]), rest[3]))
    elif kind == "--child-publish":
        _emit(publish_deferred(Path(rest[0]), float(rest[1])))
    elif kind == "--child-load":
        _emit(load_staged(Path(rest[0]), Path(rest[1])))
    elif kind == "--child-corpus":
        _emit(corpus_set(Path(rest[0])))
    elif kind == "--child-train":
        _emit(train_large(Path(rest[0]), int(rest[1]), int(rest[2]), int(rest[3])))
    else:
        raise SystemExit(f"unknown child {kind}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("--child-"):
        raise SystemExit(_child_main(sys.argv[1:]))
    raise SystemExit(main())
