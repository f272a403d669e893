"""``ocr``: handwritten words of Taskar et al. (2003) (``letter.data``), SeaRNN Section 4.

Source: one 128-pixel vector per letter (``src_tokens: FloatTensor[B, L, 128]``, zero padded,
with ``src_lengths``); target: the word's letters, EOS-terminated like fairseq's
``LanguagePairDataset``. Splits: ``test`` = fold ``--ocr-test-fold``, ``valid`` = fold
``--ocr-valid-fold``, ``train`` = the other folds. The target dictionary is the 26 letters
a-z (built, never read from disk, so fairseq-generate rebuilds the same ids).

Outputs have fixed length, one letter per input image (``fixed_length_outputs``, as the authors'
code): the SeaRNN criterions then roll in and out exactly ``|y|`` letters, and with
``--ocr-eval-hamming`` validation decodes greedily exactly as many letters as the input has
(EOS never chosen before) and logs ``hamming``: total Hamming errors / total characters x 100
(the paper's metric), usable as ``--best-checkpoint-metric``. ``--ocr-free-length`` lets the
model choose where to stop instead (fairseq's generator, at most ``src_len + b`` letters).
``--patience`` survives a resume (:mod:`._patience`).
"""

import logging
from argparse import Namespace
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
from fairseq.data import Dictionary, FairseqDataset, data_utils
from fairseq.dataclass import FairseqDataclass
from fairseq.logging import metrics
from fairseq.tasks import FairseqTask, register_task

from fairseq_searnn import validation
from fairseq_searnn.data import ocr
from fairseq_searnn.search import greedy_decode
from fairseq_searnn.tasks._batches import FirstEpochBatches
from fairseq_searnn.tasks._patience import PatienceState

logger = logging.getLogger(__name__)
MAX_POSITIONS = 1024


@dataclass
class OcrConfig(FairseqDataclass):
    ocr_data: Optional[str] = field(
        default=None, metadata={"help": "path to letter.data or letter.data.gz (Taskar et al.)"})
    ocr_test_fold: int = field(
        default=0, metadata={"help": "fold of the test split (never used for tuning)"})
    ocr_valid_fold: int = field(
        default=1, metadata={"help": "fold of the valid split (train = the other folds); -1: "
                             "no valid split, train on every non-test fold (with "
                             "--disable-validation)"})
    ocr_eval_hamming: bool = field(
        default=False, metadata={"help": "validation: greedy decoding, log the Hamming error "
                                 "'hamming' (errors / characters x 100)"})
    ocr_free_length: bool = field(
        default=False, metadata={"help": "outputs of free length: the model chooses where to "
                                 "stop (default: exactly one letter per input image)"})
    ocr_eval_max_len_b: int = field(
        default=5, metadata={"help": "--ocr-free-length --ocr-eval-hamming: at most (letters "
                             "of the batch's longest source + b) output letters, like "
                             "fairseq-generate --max-len-a 1 --max-len-b b"})


class OcrDataset(FairseqDataset):
    """Words as ``{"id", "source": FloatTensor[L, 128], "target": LongTensor[L + 1]}``."""

    def __init__(self, words, tgt_dict: Dictionary, shuffle: bool = True):
        self.src = [w.pixels for w in words]
        self.tgt = [tgt_dict.encode_line(" ".join(w.letters), add_if_not_exist=False).long()
                    for w in words]
        self.src_sizes = np.array([len(s) for s in self.src], dtype=np.int64)
        self.tgt_sizes = np.array([len(t) for t in self.tgt], dtype=np.int64)
        self.sizes = np.vstack((self.src_sizes, self.tgt_sizes)).T
        self.pad, self.eos = tgt_dict.pad(), tgt_dict.eos()
        self.shuffle = shuffle

    def __getitem__(self, index):
        return {"id": index, "source": self.src[index].float(), "target": self.tgt[index]}

    def __len__(self):
        return len(self.src)

    def collater(self, samples):
        """``net_input = {src_tokens: [B, L, 128], src_lengths: [B], prev_output_tokens}``."""
        if not samples:
            return {}
        lengths = torch.tensor([len(s["source"]) for s in samples], dtype=torch.long)
        src = samples[0]["source"].new_zeros(len(samples), int(lengths.max()), ocr.PIXELS)
        for i, s in enumerate(samples):
            src[i, : len(s["source"])] = s["source"]
        targets = [s["target"] for s in samples]
        target = data_utils.collate_tokens(targets, self.pad, self.eos)
        prev = data_utils.collate_tokens(targets, self.pad, self.eos, move_eos_to_beginning=True)
        return {
            "id": torch.tensor([s["id"] for s in samples], dtype=torch.long),
            "nsentences": len(samples),
            "ntokens": sum(len(t) for t in targets),
            "net_input": {"src_tokens": src, "src_lengths": lengths, "prev_output_tokens": prev},
            "target": target,
        }

    def num_tokens(self, index):
        return max(self.src_sizes[index], self.tgt_sizes[index])

    def num_tokens_vec(self, indices):
        return np.maximum(self.src_sizes[indices], self.tgt_sizes[indices])

    def size(self, index):
        return (self.src_sizes[index], self.tgt_sizes[index])

    def ordered_indices(self):
        """Shuffled (seeded by fairseq), then stably sorted by target and source length."""
        order = np.random.permutation(len(self)) if self.shuffle else np.arange(len(self))
        order = order[np.argsort(self.tgt_sizes[order], kind="mergesort")]
        return order[np.argsort(self.src_sizes[order], kind="mergesort")]


def letter_dictionary() -> Dictionary:
    """fairseq's special symbols, then ``a``..``z`` (ids 4..29), always the same."""
    d = Dictionary()
    for letter in ocr.ALPHABET:
        d.add_symbol(letter)
    return d


@register_task("ocr", dataclass=OcrConfig)
class OcrTask(PatienceState, FirstEpochBatches, FairseqTask):
    """Taskar et al.'s OCR words: float pixel sources, letter targets."""

    feature_dim = ocr.PIXELS  # source vector size, read by the ``ocr_gru`` model

    def __init__(self, cfg: OcrConfig, tgt_dict: Dictionary):
        super().__init__(cfg)
        self.tgt_dict = tgt_dict
        self._splits = None

    @classmethod
    def setup_task(cls, cfg: OcrConfig, **kwargs):
        if not cfg.ocr_data:
            raise ValueError("the ocr task needs --ocr-data PATH (letter.data or .gz)")
        if cfg.ocr_valid_fold == cfg.ocr_test_fold:
            raise ValueError(f"--ocr-valid-fold must differ from --ocr-test-fold "
                             f"({cfg.ocr_test_fold})")
        return cls(cfg, letter_dictionary())

    def splits(self):
        """``{"train", "valid", "test"}`` word lists (the file is parsed once per task)."""
        if self._splits is None:
            words = ocr.read_letter_data(self.cfg.ocr_data)
            unknown = set("".join(w.letters for w in words)) - set(ocr.ALPHABET)
            if unknown:
                raise ValueError(f"{self.cfg.ocr_data}: letters outside a-z: {sorted(unknown)}")
            self._splits = ocr.split_words(words, self.cfg.ocr_test_fold,
                                           self.cfg.ocr_valid_fold)
        return self._splits

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        words = self.splits().get(split)
        if not words:
            raise ValueError(f"ocr: no words in split {split!r} (folds: test "
                             f"{self.cfg.ocr_test_fold}, valid {self.cfg.ocr_valid_fold})")
        logger.info(f"ocr {split}: {len(words)} words, {sum(len(w.letters) for w in words)} "
                    f"letters from {self.cfg.ocr_data}")
        self.datasets[split] = OcrDataset(words, self.tgt_dict, shuffle=split == "train")

    def get_batch_iterator(self, dataset, **kwargs):
        """fairseq's, with ``required_batch_size_multiple = 1``: fairseq 0.12 drops the last
        batch when its size is not a multiple of it (default 8; facebookresearch/fairseq#5036),
        which would silently skip the longest words of every split, test fold included."""
        kwargs["required_batch_size_multiple"] = 1
        return super().get_batch_iterator(dataset, **kwargs)

    @property
    def fixed_length_outputs(self) -> bool:
        """One letter per input image (read by the SeaRNN criterions)."""
        return not self.cfg.ocr_free_length

    def max_positions(self):
        return (MAX_POSITIONS, MAX_POSITIONS)

    @property
    def source_dictionary(self):
        return None

    @property
    def target_dictionary(self):
        return self.tgt_dict

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        if self.cfg.ocr_eval_hamming and self.cfg.ocr_free_length:
            gen = Namespace(beam=1, max_len_a=1, max_len_b=self.cfg.ocr_eval_max_len_b)
            self.sequence_generator = self.build_generator([model], gen)
        return model

    def decode(self, model, sample):
        """Greedy outputs ``[B, L]`` (letters, pad after): exactly one letter per input image,
        or with ``--ocr-free-length`` fairseq's generator's choice."""
        pad, eos = self.tgt_dict.pad(), self.tgt_dict.eos()
        if not self.cfg.ocr_free_length:
            with torch.no_grad():
                out = greedy_decode(model, sample["net_input"],
                                    max_len=sample["net_input"]["src_lengths"], pad=pad,
                                    eos=eos, fixed_length=True)
            return out.masked_fill(out.eq(eos), pad)
        hyps = self.inference_step(self.sequence_generator, [model], sample)
        return data_utils.collate_tokens([_letters(h[0]["tokens"], pad, eos) for h in hyps],
                                         pad)

    def hamming(self, model, sample):
        """Greedy Hamming errors and reference characters of ``sample``: ``(int, int)``, as
        the ``searnn_translation`` task counts them (:mod:`fairseq_searnn.validation`)."""
        pad, eos = self.tgt_dict.pad(), self.tgt_dict.eos()
        hyps = [self.tgt_dict.string(h[h.ne(pad)]) for h in self.decode(model, sample)]
        refs = [self.tgt_dict.string(_letters(t, pad, eos)) for t in sample["target"]]
        stats = validation.sentence_stats("hamming", hyps, refs)
        return stats["_searnn_errors"], stats["_searnn_ref_len"]

    def valid_step(self, sample, model, criterion):
        loss, sample_size, log = super().valid_step(sample, model, criterion)
        if self.cfg.ocr_eval_hamming:
            log["_ocr_errors"], log["_ocr_chars"] = self.hamming(model, sample)
        return loss, sample_size, log

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        chars = sum(log.get("_ocr_chars", 0) for log in logging_outputs)
        if chars > 0:
            metrics.log_scalar("_ocr_errors", sum(log.get("_ocr_errors", 0)
                                                  for log in logging_outputs))
            metrics.log_scalar("_ocr_chars", chars)
            metrics.log_derived("hamming", lambda m: round(
                100.0 * m["_ocr_errors"].sum / max(m["_ocr_chars"].sum, 1), 2))


def _letters(tokens, pad, eos):
    """The letters of a 1-D token tensor (pad and EOS dropped)."""
    return tokens[tokens.ne(pad) & tokens.ne(eos)]
