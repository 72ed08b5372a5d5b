"""`python -m eventpipe` runs the CLI."""

from eventpipe.cli import main

main()
