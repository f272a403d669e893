"""Console helpers installed by setup.py."""

import os


def user_dir() -> str:
    """Absolute path of the installed plugin, the value fairseq's ``--user-dir`` expects."""
    return os.path.dirname(os.path.abspath(__file__))


def print_user_dir() -> None:
    """Entry point of ``fairseq-searnn-user-dir``: print the path for ``--user-dir``."""
    print(user_dir())
