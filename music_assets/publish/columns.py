"""What every column of the published tables means (for the dataset card).

The card lists the columns actually present in the staged parquet files, with
their types read from the files; this module only supplies the meaning. A
column without an entry here is still listed (as undocumented) and reported
by `hf_staging`, so a new upstream column never disappears silently.
"""

from __future__ import annotations

# One row per sample (data/<family>/*.parquet). `audio` and `midi` replace the upstream
# `audio_path` / `midi_path`, which are relative to the generator's data dir.
SAMPLE_COLUMNS: dict[str, str] = {
    "sample_id": "unique id of the performance (stable for the same generator config)",
    "audio": "the rendered performance (FLAC, 44.1 kHz, 24-bit, mono unless the render was configured for "
    "stereo): the file's bytes and name, decoded by the `datasets` Audio feature; with browsable media, the same "
    "file is `audio/<rudiment_slug>/<name>`",
    "midi": "the performance as General MIDI (one drum track, snare pitch 38): the Standard MIDI File's bytes and "
    "name; with browsable media, the same file is `midi/<rudiment_slug>/<name>`",
    "rudiment_slug": "which of the 40 PAS rudiments is played (see the rudiment table)",
    "rudiment_name": "the rudiment's PAS name",
    "pas_number": "the rudiment's number in the PAS list (1-40)",
    "category": "PAS family: roll, diddle, flam or drag",
    "subdivision": "the rhythmic grid the rudiment is written on (e.g. sixteenth, eighth_triplet)",
    "profile_id": "the simulated player; every player is in exactly one split",
    "skill_tier": "the player's tier: beginner, intermediate, advanced or professional",
    "skill_tier_binary": (
        "two-class grouping of skill_tier (novice = beginner/intermediate, skilled = advanced/professional)"
    ),
    "dominant_hand": "the player's lead hand (left-handed players mirror every sticking)",
    "split": "train, validation or test (by player)",
    "tempo_bpm": "quarter-note tempo of the performance",
    "tempo_index": "which of the player's tempos for this rudiment (0-based)",
    "length_beats": "requested length of the performance in quarter-note beats",
    "num_cycles": "how many times the rudiment's cycle is played",
    "num_strokes": "number of notes in the MIDI file (grace notes and buzz bounces included)",
    "num_grace_notes": "number of flam and drag grace notes",
    "duration_sec": "MIDI end time: the last note-off, in seconds",
    "seed": "generator seed the performance was drawn with",
    "timing_error_sd_ms": "standard deviation of the primary strokes' timing error (ms)",
    "velocity_cv": "coefficient of variation of played/intended velocity over primary strokes",
    "soundfont": "General MIDI soundfont the audio was rendered with (file name)",
    "aug_preset": "augmentation preset (recording situation) applied to the rendered audio",
    "audio_duration_sec": "length of the FLAC file in seconds (MIDI duration plus the release tail)",
    "audio_sample_rate": "sample rate of the FLAC file (Hz)",
    "audio_peak_dbfs": "peak level of the FLAC file (dBFS)",
    "audio_clipped_ratio": "share of audio samples at full scale",
    "align_median_error_ms": "median distance between labelled stroke times and onsets detected in the dry render (ms)",
}

# Parameters of the augmentation chain, one `aug_<name>` column each.
AUG_PARAMETERS: dict[str, str] = {
    "rt60_s": "reverb decay time RT60 (s)",
    "reverb_wet_db": "reverb level relative to the dry signal (dB)",
    "predelay_ms": "reverb pre-delay (ms)",
    "hf_decay_ratio": "high-frequency RT60 as a fraction of the broadband RT60",
    "highpass_hz": "high-pass filter cutoff (Hz)",
    "lowpass_hz": "low-pass filter cutoff (Hz)",
    "peak_hz": "centre frequency of the peaking EQ band (Hz)",
    "peak_gain_db": "gain of the peaking EQ band (dB)",
    "peak_q": "Q of the peaking EQ band",
    "comp_threshold_db": "compressor threshold below the signal's peak (dB)",
    "comp_ratio": "compressor ratio",
    "comp_attack_ms": "compressor attack (ms)",
    "comp_release_ms": "compressor release (ms)",
    "noise_snr_db": "signal-to-noise ratio of the added noise (dB)",
    "noise_color": "colour of the added noise",
    "bed_source": "background bed mixed in: a texture file (textures/<source_id>/<kind>/<file>.flac under "
    "sources/) or a prepared source id (empty without a bed)",
    "bed_offset_sec": "where in the background recording the bed starts (s; NaN without a bed)",
    "bed_snr_db": "signal-to-bed ratio (dB; NaN without a bed)",
    "bit_depth": "bit depth the signal was requantized to (converter simulation)",
    "peak_dbfs": "peak level the augmented audio was normalized to (dBFS)",
}

SCORE_COLUMNS: dict[str, str] = {
    "timing_accuracy": "how close strokes land to their intended times",
    "timing_consistency": "how steady the intervals between strokes are",
    "tempo_stability": "how well the tempo is held over the performance",
    "subdivision_evenness": "whether the figure is played on its true subdivision",
    "velocity_control": "how consistently stroke velocities hit their targets",
    "accent_differentiation": "accent/tap loudness contrast relative to the intended contrast (null without both)",
    "accent_accuracy": "share of strokes on the intended side of the accent threshold (null without both)",
    "hand_balance": "match of the two hands in velocity and timing",
    "weak_hand_index": "the weaker hand's quality relative to the stronger hand's",
    "flam_quality": "flam grace-note spacing and softness (null without flams)",
    "diddle_quality": "evenness of the two strokes of each diddle (null without diddles)",
    "roll_sustain": "how well velocity is held through a roll (rolls only, else null)",
    "groove_feel_proxy": "consistency left after a repeated micro-timing pattern is removed",
    "overall_score": "weighted mean of the scores that apply",
}

STROKE_COLUMNS: dict[str, str] = {
    "sample_id": "the performance (joins the default config, `data/*/*.parquet`)",
    "index": "position of the stroke in the performance (0-based, time order)",
    "hand": "R or L",
    "stroke_type": "tap, accent, diddle, buzz, flam_grace, drag_grace or buzz_bounce",
    "intended_time_ms": "where the stroke belongs on the grid (ms from MIDI time 0)",
    "actual_time_ms": "where it was played (ms from MIDI time 0 = audio time 0)",
    "timing_error_ms": "actual - intended time (ms)",
    "intended_velocity": "target MIDI velocity",
    "actual_velocity": "played MIDI velocity",
    "is_grace": "a grace note of a flam or drag",
    "is_accent": "the stroke is accented",
    "diddle_position": "1 or 2 for the strokes of a diddle, 0 otherwise",
    "flam_spacing_ms": "grace-to-primary distance of a flam grace note (ms), null otherwise",
    "parent_stroke_index": "the primary stroke a grace note belongs to, null otherwise",
    "measure_index": "which cycle of the rudiment the stroke belongs to (0-based)",
}

MEASURE_COLUMNS: dict[str, str] = {
    "sample_id": "the performance (joins the default config, `data/*/*.parquet`)",
    "measure_index": "which cycle of the rudiment (0-based)",
    "num_strokes": "primary strokes in the cycle",
    "timing_error_mean_ms": "mean timing error of the cycle's primary strokes (ms)",
    "timing_error_std_ms": "standard deviation of that timing error (ms)",
    "timing_error_max_ms": "largest absolute timing error (ms)",
    "velocity_mean": "mean played velocity",
    "velocity_std": "standard deviation of the played velocity",
    "velocity_consistency": "1 - coefficient of variation of played/intended velocity, clipped to 0-1",
    "lr_velocity_ratio": "left-hand / right-hand mean velocity ratio (played/intended)",
    "lr_timing_diff_ms": "mean timing error of the left hand minus the right hand's (ms)",
}

TABLES: dict[str, dict[str, str]] = {
    "data": {**SAMPLE_COLUMNS, **SCORE_COLUMNS},
    "strokes": STROKE_COLUMNS,
    "measures": MEASURE_COLUMNS,
}

# Score columns take their meaning from here and their unit from this note.
SCORE_NOTE = "0-100, higher is better"


def describe(table: str, column: str) -> str | None:
    """The meaning of `column` in `table` ("data", "strokes" or "measures"), or None if undocumented."""
    if column in SCORE_COLUMNS and table == "data":
        return f"{SCORE_COLUMNS[column]} ({SCORE_NOTE})"
    known = TABLES.get(table, {})
    if column in known:
        return known[column]
    if table == "data" and column.startswith("aug_") and column[4:] in AUG_PARAMETERS:
        return f"augmentation: {AUG_PARAMETERS[column[4:]]}"
    return None
