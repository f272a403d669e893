"""The demo's offline English corpus: prose lines of the documentation that ships with Python
(``fairseq-searnn-demo`` and ``python -m fairseq_searnn.data.spelling --stdlib``)."""

import contextlib
import importlib
import inspect
import io
import itertools
from typing import Iterable, Iterator, List, Optional

from fairseq_searnn.data.spelling import normalize

# Pure-Python standard-library modules present on every CPython >= 3.8 (a module missing on
# some build is skipped). Their docstrings are the demo's offline English corpus.
STDLIB_MODULES = (
    "abc", "argparse", "ast", "base64", "bisect", "calendar", "cmd", "codecs", "collections",
    "colorsys", "configparser", "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal",
    "difflib", "dis", "email", "enum", "filecmp", "fileinput", "fnmatch", "fractions", "ftplib",
    "functools", "getopt", "gettext", "glob", "gzip", "hashlib", "heapq", "hmac", "html",
    "http.client", "http.cookiejar", "http.server", "imaplib", "inspect", "io", "ipaddress",
    "json", "locale", "logging", "mailbox", "mimetypes", "numbers", "operator", "optparse", "os",
    "pathlib", "pdb", "pickle", "pkgutil", "platform", "poplib", "pprint", "queue", "quopri",
    "random", "re", "sched", "secrets", "selectors", "shelve", "shlex", "shutil", "smtplib",
    "socket", "socketserver", "sqlite3", "statistics", "string", "struct", "subprocess", "tarfile",
    "tempfile", "textwrap", "threading", "timeit", "token", "tokenize", "trace", "traceback",
    "types", "typing", "unittest", "urllib.parse", "urllib.request", "uuid", "warnings", "wave",
    "weakref", "xml.dom.minidom", "xml.etree.ElementTree", "zipfile", "zipimport",
)


def _prose(line: str) -> bool:
    """Keep docstring lines that read like prose (mostly letters and spaces, a few words)."""
    if len(line) < 12 or line.startswith((">>>", "...", "-", "=", "*", ":", "|")):
        return False
    letters = sum(c.isalpha() or c == " " for c in line)
    return letters >= 0.85 * len(line) and line.count(" ") >= 2


def _topic_docs() -> Iterator[str]:
    """The language reference topics of ``pydoc_data.topics`` (what ``help("topic")`` shows)."""
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some distributions ship the standard library without it
        topics = {}
    for key in sorted(topics):
        yield topics[key]


def _module_docs(name: str) -> Iterator[Optional[str]]:
    """The docstrings of module ``name`` and of its public classes, functions and methods, in
    a fixed order (nothing if this build lacks the module)."""
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            mod = importlib.import_module(name)
    except Exception:  # noqa: BLE001 - a module missing on this build is skipped
        return
    yield inspect.getdoc(mod)
    for attr in sorted(vars(mod)):
        obj = vars(mod)[attr]
        if attr.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj):
            yield inspect.getdoc(obj)
        if inspect.isclass(obj):
            for meth in sorted(vars(obj)):
                if not meth.startswith("_") and inspect.isfunction(vars(obj)[meth]):
                    yield inspect.getdoc(vars(obj)[meth])


def stdlib_docstring_lines(modules: Iterable[str] = STDLIB_MODULES) -> List[str]:
    """English prose lines of the documentation that ships with Python's standard library:
    the language reference topics of ``pydoc_data.topics`` (what ``help("topic")`` shows),
    then the docstrings of standard-library modules and of their public classes, functions and
    methods (``inspect.getdoc``). Fixed order, deduplicated, normalised. Deterministic for a
    given Python version; needs no file and no network."""
    seen, out = set(), []
    docs = itertools.chain(_topic_docs(), itertools.chain.from_iterable(map(_module_docs, modules)))
    for doc in docs:
        for raw in (doc or "").splitlines():
            raw = raw.strip()
            if raw in seen or not _prose(raw):
                continue
            seen.add(raw)
            out.append(normalize(raw))
    return out
