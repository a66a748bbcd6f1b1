"""``python -m sync.central`` runs the ``central`` console command (an entry point, like the script)."""

from enrollment_station.central import main

main()
