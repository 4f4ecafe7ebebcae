"""Who answers for each asset group (Dagster's `owners`: the UI's owner filter and the asset pages).

Every asset also carries a `code_version`: bump it, beside the asset, when a change to the code
behind it changes what it writes; the UI then marks it and what follows it stale, and the
per-source assets' automation re-runs them (`defs/automation.per_source_condition`).
"""

SOURCES = ["team:sources"]
RUDIMENTS = ["team:rudiments"]
PUBLISH = ["team:publish"]
TRAINING_SETS = ["team:training-sets"]
MODELS = ["team:models"]
