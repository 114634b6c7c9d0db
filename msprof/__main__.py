"""``python -m msprof``: the same commands as the ``msprof`` console script."""
from msprof.cli.main import main

if __name__ == "__main__":
    main()
