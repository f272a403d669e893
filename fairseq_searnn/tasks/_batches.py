"""Training batches that survive a resume.

fairseq 0.12 builds an epoch iterator's batches once, when the iterator is created, from a
permutation seeded by ``seed + epoch`` (``FairseqTask.get_batch_iterator``), and then only
shuffles their order from epoch to epoch. A fresh run creates its iterator at epoch 1 and keeps
it; a run resumed in epoch N > 1 (from the checkpoint written at the end of epoch N - 1, or
from one written during epoch N) creates it at epoch N, so every later batch groups other
sentences than the uninterrupted run's: the resumed run trains on a different sequence of
batches and ends elsewhere (within the first epoch the two agree).

:class:`FirstEpochBatches` builds a reusable iterator's batches as at epoch 1 whatever the epoch
it is created at (with ``--update-ordered-indices-seed``, from the seed fairseq gives epoch 1),
so a resumed run sees the batches, in the order, of the run that was never stopped. Iterators
fairseq rebuilds on purpose (sharded data, ``--update-epoch-batch-itr``, also implied by
``--grouped-shuffling``, datasets that cannot reuse their iterator) are left to fairseq. A
reusable dataset first seen at an epoch > 1 is taken for a resume.
"""

from fairseq_searnn.tasks._root import root_option


class FirstEpochBatches:
    """Task mixin (before fairseq's task class in the bases): reusable batch iterators are
    built as at epoch 1 and then set to the epoch asked for."""

    def get_batch_iterator(self, dataset, **kwargs):
        """fairseq's, built as at epoch 1 when a reusable iterator is first created later."""
        epoch = kwargs.get("epoch", 1)
        reusable = (not kwargs.get("disable_iterator_cache", False)
                    and not kwargs.get("update_epoch_batch_itr", False)
                    and self.can_reuse_epoch_itr(dataset))
        if epoch <= 1 or not reusable or dataset in self.dataset_to_epoch_iter:
            return super().get_batch_iterator(dataset, **kwargs)
        first = {**kwargs, "epoch": 1}
        data_cfg = root_option(self.cfg, "dataset")
        if data_cfg is not None and data_cfg.get("update_ordered_indices_seed", False):
            first["seed"] = kwargs.get("seed", 1) - epoch + 1  # fairseq passes seed + epoch
        iterator = super().get_batch_iterator(dataset, **first)
        dataset.set_epoch(epoch)
        iterator.epoch = epoch
        return iterator
