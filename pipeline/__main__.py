"""`python -m pipeline` runs the command line."""

from pipeline.interfaces.cli import main

main()
