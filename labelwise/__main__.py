"""``python -m labelwise``: the command line, as the ``labelwise`` script."""

from labelwise.cli import main

if __name__ == "__main__":
    main()
