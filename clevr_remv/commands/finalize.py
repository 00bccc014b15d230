"""`clevr-remv finalize DIR`: complete a dataset rendered by separate jobs (farm arrays, Ray, by hand).

Every job of an array renders its shards and exits; nobody knows which one ends last.
`finalize` (a dependent job, or a person on Monday) reads the plan from the stored
configuration, and either writes the split files and `dataset.json` or names each
missing shard with the command that renders it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

from clevr_remv.contract import counted, setup_logging

log = logging.getLogger("clevr_remv")


@click.command("finalize")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("-v", "--verbose", is_flag=True)
def command(directory: Path, verbose: bool) -> None:
    """Write DIRECTORY's split files and dataset.json once every planned shard is complete.

    Otherwise list the missing or incomplete shards with the commands that render them,
    and exit 1.
    """
    setup_logging(verbose)
    from clevr_remv.produce.finish import finish_dataset
    from clevr_remv.produce.run import blender_from_shards, check_output
    from clevr_remv.store import sweep_stale_temporaries
    from clevr_remv.store.completion import (
        missing_shards,
        render_command,
        stored_config,
    )
    from clevr_remv.store.plan import plan_shards

    config = stored_config(directory)
    check_output(directory, config)
    sweep_stale_temporaries(directory)
    missing = missing_shards(config, directory)
    if missing:
        planned = len(plan_shards(config))
        click.echo(f"{len(missing)} of {planned} shards are missing or incomplete:")
        for shard in missing:
            state = "incomplete" if shard.path(directory).exists() else "missing"
            click.echo(f"  {shard.name} ({state}, scenes {shard.first_scene}..{shard.first_scene + shard.scene_count - 1})")
        click.echo("render them with:")
        for shard in missing:
            click.echo(f"  {render_command(config, directory, shard)}")
        from clevr_remv.store.manifest import manifest_path

        if manifest_path(directory).is_file():  # a complete dataset damaged since: its record stays
            kept = "the dataset.json already there (written when it was complete) is left as it was"
        else:
            kept = "dataset.json not written"
        raise ValueError(f"{directory} is not complete ({counted(len(missing), 'shard')} missing or incomplete); {kept}")
    manifest = finish_dataset(config, directory, blender_from_shards(config, directory))
    click.echo(f"dataset complete: {manifest}")
