"""One module per command, named for it: each exposes `command` (a click.Command).

cli.py discovers them, so adding a command is adding a file here; nothing else changes.
Each module imports its heavy dependencies (h5py, matplotlib, ray ...) inside the command
so that `clevr-remv --help` stays fast.
"""
