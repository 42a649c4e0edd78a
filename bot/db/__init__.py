"""Database layer: engine, models, migrations helper and the batched writer."""
