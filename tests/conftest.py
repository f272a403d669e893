"""Session fixtures: a generated toy parallel corpus binarised with fairseq's preprocessing."""

import pytest
import torch

import helpers


@pytest.fixture(autouse=True)
def _two_threads():
    """Tests run on 2-core machines: keep torch from oversubscribing them."""
    torch.set_num_threads(2)


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
