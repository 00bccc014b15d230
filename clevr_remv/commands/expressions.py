"""`clevr-remv expressions`: new referring expressions for a rendered dataset, without re-rendering
(produce/regenerate.py does the work, all or nothing)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from clevr_remv.contract import counted, language_options, setup_logging

log = logging.getLogger("clevr_remv")


@click.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--templates", type=click.Path(path_type=Path, exists=True, file_okay=False), default=None,
              help="Template folder (default: the repository's templates/).")
@language_options(keep_stored=True)
@click.option("-v", "--verbose", is_flag=True)
def expressions(out: Path, templates: Path | None, max_hops: int | None, targets: str | None,
                ordinals: bool | None, verbose: bool) -> None:
    """Regenerate the referring expressions of a rendered dataset in OUT, without re-rendering.

    --max-hops, --targets and --ordinals change the dataset's language; the new settings are stored with it.
    """
    setup_logging(verbose)
    from clevr_remv.produce.regenerate import regenerate_expressions

    manifest = regenerate_expressions(out, templates, on_shard=lambda p: log.info("rewrote %s", p),
                                      max_hops=max_hops, targets=targets, ordinals=ordinals)
    from clevr_remv.store import read_manifest

    for split, entry in read_manifest(out)["splits"].items():
        click.echo(f"{split}: {counted(entry['pairs'], 'pair')} in {counted(entry['scenes'], 'scene')}")
    click.echo(f"updated {manifest}")


command = expressions
