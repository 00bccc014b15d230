"""Where shards render: every runner calls `produce.pixel_path.render_shard` on whole shards.

- `serial`: one process, one Blender (the default, and what `blender -b -P` runs);
- `local`: `--workers N` processes on this machine, each with its own Blender, optionally
  pinned to one GPU each;
- `ray_runner`: Ray tasks on a cluster (`--executor ray`);
- `job_array`: which shards job I of an N-job scheduler array renders (`--shard I/N|auto`);
- `stopping`: SIGINT/SIGTERM, a full disk, and the command that resumes.
"""
