"""Dagster-aware operations: executors, instance set-up and reaping, failure alerts, the demo driver."""
