"""``python -m facecast.cli``: the ``facecast`` command (the tests start the server so)."""

from facecast.cli import main

if __name__ == "__main__":
    main()
