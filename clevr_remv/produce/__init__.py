"""Producing a dataset. `pixel_path` is the path one scene walks from its seed to a shard (what the
render-code fingerprint covers, with scene/, render/ and config.py); apart from it, `run` (checking
the output, skipping complete shards, handing the rest to a runner), `finish` (split files, card and
manifest, together), `regenerate` (new expressions without re-rendering), the dataset card and the
provenance fingerprint itself.
"""
