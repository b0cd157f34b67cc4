"""posepile: ingest 3D human pose datasets into person-centred crops and sharded TFRecords."""
