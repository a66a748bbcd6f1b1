"""``python -m sync.central`` runs the ``central`` command."""

from sync.central.cli import main

main()
