"""One checkpoint on one split: teacher-forced scores, greedy and beam decoding, their errors
position by position, output pathologies and (optionally) the SeaRNN target report.

    diag = Diagnosis(model, task, Options(cost="edit", beam=5))
    for sample in batches:      # fairseq batches on the model's device
        diag.add(sample)
    report = diag.result()      # a JSON-able dict (see docs/diagnose.md)
"""

import math
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

from fairseq_searnn import costs
from fairseq_searnn.search import content, prev_output_tokens

from . import decoding, metrics, text
from .metrics import Sums, seq_lengths
from .targets import TargetStats

MODES = ("teacher_forced", "greedy", "beam")
#: costs whose corpus form is a count of errors per reference symbol (the others: BLEU)
COUNTED_COSTS = ("edit", "hamming")


@dataclass
class Options:
    """What to measure: the test ``cost`` (a ``fairseq_searnn.costs`` name), ``beam`` size (0:
    no beam decoding), the length bound ``int(max_len_a * src_len + max_len_b)``,
    fairseq's ``post_process`` for BLEU, the n-gram ``orders`` of the repeat rates and how many
    sentences the target report covers (``target_sentences``, whole batches; 0: all)."""

    cost: str = "bleu"
    beam: int = 5
    max_len_a: float = 0.0
    max_len_b: int = 200
    post_process: Optional[str] = None
    orders: Tuple[int, ...] = (1, 2, 3, 4)
    target_sentences: int = 512


def special_ids(tgt_dict) -> Tensor:
    """``[S]`` ids of the special symbols a decoder can emit besides ``<unk>`` and EOS: ``<s>``
    and the ``madeupword`` fillers that pad a dictionary to a multiple of 8."""
    ids = [tgt_dict.bos()] + [i for i, s in enumerate(tgt_dict.symbols)
                              if s.startswith("madeupword")]
    return torch.tensor(sorted(set(ids)), dtype=torch.long)


class Diagnosis:
    """Accumulates the statistics of one ``model`` over the batches given to :meth:`add`.

    Args:
        model: a fairseq encoder-decoder model with an incremental decoder (eval mode is set).
        task: its task (dictionaries, ``build_generator``, ``inference_step``).
        opts: :class:`Options`.
        criterion: a SeaRNN criterion for the target report (:mod:`.targets`), or None.
    """

    def __init__(self, model, task, opts: Options, criterion=None):
        self.model, self.task, self.opts = model.eval(), task, opts
        self.dict = task.target_dictionary
        self.pad, self.eos, self.unk = self.dict.pad(), self.dict.eos(), self.dict.unk()
        self.specials = special_ids(self.dict)
        self.cost_fn = costs.get_cost(opts.cost)
        self.generator = (decoding.build_generator(task, model, opts.beam, opts.max_len_a,
                                                   opts.max_len_b) if opts.beam > 0 else None)
        self.sums: Dict[str, Sums] = {m: Sums() for m in (*MODES, "reference")}
        self.texts: Dict[str, list] = {"reference": [], "greedy": [], "beam": []}
        self.targets = TargetStats(criterion) if criterion is not None else None
        self.target_sentences = 0

    def add(self, sample) -> None:
        """Add one fairseq batch (``net_input``, ``target: [B, T]``) on the model's device."""
        target, pad, eos = sample["target"], self.pad, self.eos
        ref = content(target, pad, eos)  # [B, Lr]
        lprobs = decoding.teacher_forced_lprobs(self.model, sample)
        pred, tf = metrics.teacher_forced(lprobs, target, pad)
        self.sums["teacher_forced"].add(tf)
        self.sums["teacher_forced"].add(metrics.entropy_sums(lprobs, target, pad))
        self.sums["teacher_forced"].add(
            metrics.position_errors(pred, seq_lengths(target, pad), target, pad))
        self.sums["reference"].add(self._outputs(ref))
        self.texts["reference"] += text.strings(target, self.dict, self.opts.post_process, True)
        max_len = decoding.max_lengths(self.model, sample, self.opts.max_len_a,
                                       self.opts.max_len_b)
        greedy = decoding.greedy(self.model, sample, max_len, pad, eos)
        self._hypotheses("greedy", greedy, target, ref, max_len)
        along = decoding.teacher_forced_lprobs(self.model, sample,
                                               prev_output_tokens(greedy, pad, eos))
        self.sums["greedy"].add(metrics.entropy_sums(along, greedy, pad))
        if self.generator is not None:
            hyp = decoding.beam(self.task, self.generator, self.model, sample, pad)
            self._hypotheses("beam", hyp.to(target.device), target, ref, max_len)
        cap = self.opts.target_sentences
        if self.targets is not None and (cap <= 0 or self.target_sentences < cap):
            self.targets.add(self.model, sample)
            self.target_sentences += target.size(0)

    def _outputs(self, seq: Tensor) -> Dict[str, Tensor]:
        return metrics.output_stats(seq, self.pad, self.unk, self.specials, self.opts.orders)

    def _hypotheses(self, mode: str, hyp: Tensor, target: Tensor, ref: Tensor,
                    max_len: Tensor) -> None:
        """Add decoded hypotheses ``hyp: [B, L]`` (EOS-terminated) of ``mode``."""
        pad, s = self.pad, self.sums[mode]
        body = content(hyp, pad, self.eos)
        s.add(metrics.position_errors(hyp, seq_lengths(hyp, pad), target, pad))
        s.add(self._outputs(body))
        s.add({"at_max_len": seq_lengths(body, pad).ge(max_len).sum()})
        s.add(metrics.cost_sums(self.cost_fn(body, ref, pad), ref, pad,
                                self.opts.cost in COUNTED_COSTS))
        self.texts[mode] += text.strings(hyp, self.dict, self.opts.post_process, False)

    def result(self) -> dict:
        """The report: one section per mode, the references' own rates, the greedy-beam gap and
        the target report (see docs/diagnose.md for every key)."""
        ref_sums = self.sums["reference"]
        out = {"sentences": int(ref_sums.get("sentences")),
               "reference_symbols": int(ref_sums.get("symbols")),
               "teacher_forced": _teacher_forced(self.sums["teacher_forced"]),
               "reference": _outputs(ref_sums, ref_sums, self.opts.orders)}
        for mode in ("greedy", "beam"):
            if mode == "beam" and self.generator is None:
                continue
            s = self.sums[mode]
            bleu, detail = text.corpus_bleu(self.texts[mode], self.texts["reference"])
            out[mode] = {"cost": s.ratio("cost", "cost_sentences"),
                         "corpus_error": _percent(s.ratio("errors", "ref_symbols")),
                         "bleu": bleu, "bleu_detail": detail,
                         **_positions(s), **_outputs(s, ref_sums, self.opts.orders)}
            if "entropy_tokens" in s.scalars:  # greedy: along the model's own decoding
                out[mode]["entropy"] = s.ratio("entropy", "entropy_tokens")
        if "beam" in out:
            out["beam_minus_greedy"] = {
                k: _diff(out["beam"][k], out["greedy"][k]) for k in ("cost", "corpus_error",
                                                                     "bleu")}
        if self.targets is not None:
            out["targets"] = {"sentences": self.target_sentences, **self.targets.result()}
        return out


def _teacher_forced(s: Sums) -> dict:
    nll = s.ratio("nll", "tokens")
    bits = nll / math.log(2) if nll is not None else None
    return {"token_accuracy": s.ratio("correct", "tokens"), "nll_bits": bits,
            "entropy": s.ratio("entropy", "entropy_tokens"), **_positions(s)}


def _positions(s: Sums) -> dict:
    """Error rates overall, by position and around the first error."""
    none = torch.zeros(0, dtype=torch.float64)
    err = s.vectors.get("errors_by_position", none)
    tok = s.vectors.get("tokens_by_position", none)
    before = s.ratio("prefix_ok_errors", "prefix_ok_tokens")
    after = s.ratio("next_errors", "next_tokens")
    return {"error_rate": float(err.sum() / tok.sum()) if tok.sum() else None,
            "error_after_correct_prefix": before,
            "error_next_after_first_error": after,
            "error_after_first_error": s.ratio("after_errors", "after_tokens"),
            "compounding": after / before if before and after is not None else None,
            "tokens_after_first_error": int(s.get("next_tokens")),
            "error_by_position": [float(e / t) if t else None for e, t in zip(err, tok)],
            "tokens_by_position": [int(t) for t in tok]}


def _outputs(s: Sums, ref: Sums, orders) -> dict:
    """Pathologies: repeats, length against the references, special symbols emitted."""
    ref_symbols = ref.get("symbols")
    out = {"length_ratio": s.get("symbols") / ref_symbols if ref_symbols else None,
           "adjacent_repeat_rate": s.ratio("adjacent_repeats", "adjacent_pairs")}
    for n in orders:
        out[f"repeated_{n}gram_rate"] = s.ratio(f"repeat_{n}", f"ngrams_{n}")
    out["unk_share"] = s.ratio("unk", "symbols")
    out["special_share"] = s.ratio("special", "symbols")
    if "at_max_len" in s.scalars:
        out["at_max_length"] = s.ratio("at_max_len", "sentences")
    return out


def _percent(x: Optional[float]) -> Optional[float]:
    return None if x is None else 100.0 * x


def _diff(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or b is None else a - b
