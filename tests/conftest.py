"""Session fixtures: a generated toy parallel corpus binarised with fairseq's preprocessing."""

import logging

import pytest
import torch

import helpers


@pytest.fixture(autouse=True)
def _two_threads():
    """Tests run on 2-core machines: keep torch from oversubscribing them."""
    torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _restore_logging():
    """In-process fairseq runs (and the demo) configure logging globally: give every test the
    levels and enabled flags the previous one started with."""
    def loggers():
        found = logging.Logger.manager.loggerDict.values()
        return [logging.getLogger()] + [lg for lg in found if isinstance(lg, logging.Logger)]

    saved = {lg.name: (lg.level, lg.disabled) for lg in loggers()}
    yield
    for lg in loggers():  # loggers created during the test go back to the defaults
        lg.setLevel(saved.get(lg.name, (logging.NOTSET, False))[0])
        lg.disabled = saved.get(lg.name, (logging.NOTSET, False))[1]


@pytest.fixture(scope="session")
def data_bin(tmp_path_factory):
    """Binarised toy corpus (separate src/tgt dictionaries), ~200 training pairs."""
    root = tmp_path_factory.mktemp("toy")
    text = helpers.write_parallel_corpus(root / "text")
    return helpers.binarize(text, root / "bin")


@pytest.fixture(scope="session")
def shared_data():
    """``../shared/data`` next to the repository, or skip where it is absent (users' machines)."""
    if not helpers.SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available on this machine")
    return helpers.SHARED_DATA
