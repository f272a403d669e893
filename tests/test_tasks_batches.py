"""The plugin's tasks build a training iterator's batches as at epoch 1 whatever the epoch it
is created at (``tasks/_batches.py``), so a run resumed in a later epoch trains on the batches
of the run that was never stopped; fairseq's ``translation`` task does not (the contrast shows
the toy data does regroup)."""

import pytest
from fairseq import tasks

import helpers
from fairseq_searnn.data import ocr

TASKS = ["searnn_translation", "ocr", "translation"]


@pytest.fixture(scope="module")
def letter_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("ocr") / "letter.data.gz"
    return ocr.write_letter_data(path, ocr.synthetic_words(120, seed=3))


def _iterator(name, data_bin, letter_data, epoch, extra=(), seed=1):
    """A training iterator of a fresh task, created at ``epoch`` with ``seed`` (what
    fairseq's trainer passes: ``--seed``, plus the epoch under
    ``--update-ordered-indices-seed``)."""
    if name == "ocr":
        argv = helpers.ocr_train_argv(letter_data, extra=extra)
    else:
        argv = helpers.train_argv(data_bin, extra=list(extra), task=name)
    task = tasks.setup_task(helpers.parse_cfg(argv).task)
    task.load_dataset("train")
    return task.get_batch_iterator(dataset=task.dataset("train"), max_sentences=16,
                                   max_tokens=400, seed=seed, epoch=epoch)


def _order(iterator, epoch):
    """The batches, as sentence ids, that ``iterator`` gives in ``epoch``."""
    return [tuple(batch) for batch in iterator.ordered_batches(epoch, False, True)]


@pytest.mark.parametrize("name", TASKS)
def test_an_iterator_created_later_has_the_first_epochs_batches(name, data_bin, letter_data):
    fresh = _iterator(name, data_bin, letter_data, epoch=1)
    resumed = _iterator(name, data_bin, letter_data, epoch=3)
    assert resumed.epoch == 3 and resumed.next_epoch_idx == 3
    same = _order(resumed, 3) == _order(fresh, 3) and _order(resumed, 4) == _order(fresh, 4)
    assert same == (name != "translation")


@pytest.mark.parametrize("name", TASKS)
def test_a_resume_in_the_middle_of_epoch_2_continues_its_batches(name, data_bin, letter_data):
    fresh = _iterator(name, data_bin, letter_data, epoch=1)
    list(fresh.next_epoch_itr(shuffle=True))
    epoch_2 = [sample["id"].tolist() for sample in fresh.next_epoch_itr(shuffle=True)]
    resumed = _iterator(name, data_bin, letter_data, epoch=2)
    resumed.load_state_dict({"version": 2, "epoch": 2, "iterations_in_epoch": 2,
                             "shuffle": True})
    rest = [sample["id"].tolist() for sample in resumed.next_epoch_itr(shuffle=True)]
    assert len(epoch_2) > 3
    assert (rest == epoch_2[2:]) == (name != "translation")


@pytest.mark.parametrize("name", ["searnn_translation", "ocr"])
def test_update_ordered_indices_seed_resumes_the_first_epochs_batches(name, data_bin,
                                                                       letter_data):
    extra = ["--update-ordered-indices-seed"]
    fresh = _iterator(name, data_bin, letter_data, epoch=1, extra=extra, seed=1 + 1)
    resumed = _iterator(name, data_bin, letter_data, epoch=3, extra=extra, seed=1 + 3)
    assert _order(resumed, 3) == _order(fresh, 3)
