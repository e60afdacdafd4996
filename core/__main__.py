"""`python -m core ...` is the `floe` command."""

from core.cli import main

main()
