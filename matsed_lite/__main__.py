import sys

from .cli import main

# Guarded: the synth worker pool starts processes with "spawn", which imports
# the main module again in every child.
if __name__ == "__main__":
    sys.exit(main())
