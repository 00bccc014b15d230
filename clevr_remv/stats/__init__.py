"""Dataset statistics: counts from the small datasets, the published figures beside them, plots.

    collect.py    reads `scenes`, `refs/*` and attributes of each shard into counters
    report.py     the numbers of stats.json and the Markdown table
    published.py  the published CLEVR-Remv figures (data)
    figures.py    the matplotlib figures, drawn from the report alone

`clevr-remv stats DIR --out FIGDIR` (clevr_remv/commands/stats.py) runs them in that order.
"""
