"""Partition definitions shared by several asset groups (one object each)."""

from __future__ import annotations

import dagster as dg

from music_assets.rudiments.constants import RUDIMENT_SLUGS, SKILL_TIERS

PRECISIONS: tuple[str, ...] = ("fp16", "int8", "int4")

rudiment_partitions = dg.StaticPartitionsDefinition(list(RUDIMENT_SLUGS))
tier_partitions = dg.StaticPartitionsDefinition(list(SKILL_TIERS))
quantized_partitions = dg.MultiPartitionsDefinition(
    {"tier": tier_partitions, "precision": dg.StaticPartitionsDefinition(list(PRECISIONS))}
)
# One partition per selected source id; kept in sync by selected_sources and the raw-audio sensor.
prepared_source_partitions = dg.DynamicPartitionsDefinition(name="prepared_sources")
