"""``python -m dispatchlab``: the ``dispatchlab`` command, for an environment without its script."""

from dispatchlab.cli import main

if __name__ == "__main__":
    main()
