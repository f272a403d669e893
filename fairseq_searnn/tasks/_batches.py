"""Training batches that survive a resume.

fairseq 0.12 builds an epoch iterator's batches once, when the iterator is created, from a
permutation seeded by ``seed + epoch`` (``FairseqTask.get_batch_iterator``), and then only
shuffles their order from epoch to epoch. A fresh run creates its iterator at epoch 1 and keeps
it; a run resumed from a checkpoint written at the end of epoch N creates it at epoch N + 1, so
every later batch groups other sentences than the uninterrupted run's: the resumed run trains
on a different sequence of batches and ends elsewhere (within the first epoch the two agree).

:class:`FirstEpochBatches` builds a reusable iterator's batches as at epoch 1 whatever the epoch
it is created at, so a resumed run sees the batches, in the order, of the run that was never
stopped. Iterators fairseq rebuilds on purpose (``--rebuild-batches``, sharded data, datasets
that cannot reuse their iterator) are left to fairseq.
"""


class FirstEpochBatches:
    """Task mixin (before fairseq's task class in the bases): reusable batch iterators are
    built as at epoch 1 and then set to the epoch asked for."""

    def get_batch_iterator(self, dataset, **kwargs):
        epoch = kwargs.get("epoch", 1)
        reusable = (not kwargs.get("disable_iterator_cache", False)
                    and not kwargs.get("update_epoch_batch_itr", False)
                    and not getattr(self.cfg, "rebuild_batches", False)
                    and self.can_reuse_epoch_itr(dataset))
        if epoch <= 1 or not reusable or dataset in self.dataset_to_epoch_iter:
            return super().get_batch_iterator(dataset, **kwargs)
        iterator = super().get_batch_iterator(dataset, **{**kwargs, "epoch": 1})
        dataset.set_epoch(epoch)
        iterator.epoch = epoch
        return iterator
