"""Pieces shared by the Multi30k drivers (``examples/nmt/converged.py``, ``from_scratch.py``):
the environment of a ``train.sh`` run, sacreBLEU of a checkpoint's greedy and beam decodes
(cached, hypotheses kept), sacreBLEU's paired bootstrap resampling of two systems,
``fairseq-searnn-diagnose`` of a checkpoint, and the training precision."""

import contextlib
import io
import json
import logging
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from fairseq_searnn.recipes.replication import cached

# the decoding bound of every score and diagnosis: at most 1.2 x source length + 10 tokens
GEN = {"max_len_a": 1.2, "max_len_b": 10}
CLIP = ["--clip-norm", "5"]  # the authors' gradient-norm clipping (``--max_grad_norm 5``)
PRECISIONS = ("float32", "bfloat16", "auto")


def train_env(prep, save, seed: int, **extra: str) -> Dict[str, str]:
    """The environment of one ``examples/nmt/train.sh`` run on one thread: the prepared
    directory, save directory and seed, plus ``extra`` (METHOD, ARCH, DROPOUT, ...). ``PATH``
    starts with the running interpreter's ``bin`` directory (once), so that the script finds
    this environment's ``fairseq-train`` and ``fairseq-searnn-user-dir`` even when the driver
    runs as ``venv/bin/python ...`` without the environment activated."""
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH")
    rest = [] if not path else [p for p in path.split(os.pathsep)
                                if os.path.normpath(p) != os.path.normpath(bin_dir)]
    return dict(os.environ, PATH=os.pathsep.join([bin_dir, *rest]), OMP_NUM_THREADS="1",
                MKL_NUM_THREADS="1", PREP=str(prep), SAVE=str(save), SEED=str(seed), **extra)


def score_beams(prep, checkpoint, split: str, into, beams: Sequence[int] = (1, 5),
                hypotheses_dir=None) -> Dict[str, dict]:
    """``{"beamB": result}``: sacreBLEU of ``checkpoint`` on ``split`` for each beam size
    (:func:`fairseq_searnn.data.nmt_eval.score_checkpoint`, bounded by :data:`GEN`), cached in
    the JSON file ``into``. With ``hypotheses_dir``, each decode's detokenised hypotheses are
    kept there as ``SPLIT-beamB.txt`` (for :func:`paired_bootstrap`)."""
    from fairseq_searnn.data import nmt_eval
    from fairseq_searnn.data.nmt_prepare import write_lines

    def compute():
        out = {}
        for beam in beams:
            result, hyps = nmt_eval.score_checkpoint(prep, checkpoint, split, beam=beam, **GEN)
            if hypotheses_dir is not None:
                write_lines(Path(hypotheses_dir) / f"{split}-beam{beam}.txt", hyps)
            print(f"{checkpoint}: {split} beam {beam}: BLEU {result['sacrebleu']:.2f} "
                  f"({result['signature']})", flush=True)
            out[f"beam{beam}"] = result
        return out
    return cached(into, compute)


def paired_bootstrap(references: Sequence[str], baseline: Sequence[str],
                     system: Sequence[str], samples: int = 1000,
                     lowercase: bool = False) -> Dict[str, object]:
    """sacreBLEU's paired bootstrap resampling (``sacrebleu --paired-bs``, through its API:
    ``sacrebleu.significance.PairedTest``) of ``system`` against ``baseline``, detokenised
    hypotheses of the same ``references``: ``{"baseline", "system"}`` (corpus BLEU),
    ``p_value`` (of the null hypothesis that they score the same) and the test's
    ``signature``. The resampling is seeded as the command line's (``SACREBLEU_SEED``, 12345
    by default), so both give the same p-value."""
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import PairedTest

    if not len(references) == len(baseline) == len(system):
        raise ValueError(f"{len(references)} references, {len(baseline)} baseline and "
                         f"{len(system)} system hypotheses")
    logging.getLogger("sacrebleu").setLevel(logging.WARNING)
    test = PairedTest([("baseline", list(baseline)), ("system", list(system))],
                      {"BLEU": BLEU(lowercase=lowercase)}, [list(references)],
                      test_type="bs", n_samples=samples)
    signatures, scores = test()
    base, other = scores["BLEU"]
    return {"baseline": base.score, "system": other.score, "p_value": other.p_value,
            "signature": str(signatures["BLEU"])}


def diagnose(data_bin, checkpoint, out, subset: str = "valid",
             criterion_argv: Sequence[str] = (), criterion_from=None,
             target_sentences: int = 0, post_process: str = "sentencepiece") -> dict:
    """``fairseq-searnn-diagnose`` of ``checkpoint`` on ``subset`` (greedy, no beam, decodes
    bounded by :data:`GEN`) with ``out/diagnose.json`` and its plots, cached there: the
    checkpoint's report. A SeaRNN criterion's target report on the first
    ``target_sentences`` sentences (0: all) is added with ``criterion_argv`` (``--criterion
    NAME`` and its options) or ``criterion_from`` (a checkpoint trained with it)."""
    from fairseq_searnn.diagnose import cli

    out = Path(out)
    if not (out / "diagnose.json").exists():
        argv = [str(data_bin), "--path", str(checkpoint), "--gen-subset", subset,
                "--beam", "0", "--cost", "bleu", "--max-len-a", str(GEN["max_len_a"]),
                "--max-len-b", str(GEN["max_len_b"]), "--post-process", post_process,
                "--target-sentences", str(target_sentences), "--out", str(out), "--cpu",
                "--no-progress-bar"]
        if criterion_from is not None:
            argv += ["--criterion-from", str(criterion_from)]
        with contextlib.redirect_stdout(io.StringIO()):
            cli.run([*argv, *map(str, criterion_argv)])
    return json.loads((out / "diagnose.json").read_text())["checkpoints"][0]


def resolve_precision(choice: str) -> Tuple[str, str]:
    """``(precision, why)`` of a driver's ``--precision``: ``float32`` and ``bfloat16`` as
    asked; ``auto`` is bfloat16 where ``fairseq_searnn.search.precision.fast_bfloat16()``
    says this machine runs it fast, else float32."""
    if choice not in PRECISIONS:
        raise ValueError(f"precision {choice!r}: one of {', '.join(PRECISIONS)}")
    if choice != "auto":
        return choice, "asked"
    from fairseq_searnn.search.precision import fast_bfloat16

    if fast_bfloat16():
        return "bfloat16", "auto: fast_bfloat16() holds on this CPU"
    return "float32", "auto: fast_bfloat16() does not hold on this CPU"


def precision_args(precision: str, searnn: bool = False, risk: bool = False) -> List[str]:
    """fairseq-train options of a precision: for bfloat16, autocast of the training and
    validation steps (task ``searnn_translation``'s ``--searnn-autocast``) and the decoding of
    a SeaRNN criterion (roll-ins and roll-outs: ``--searnn-decode-dtype``) or of
    ``sequence_risk`` (its candidates: ``--risk-decode-dtype``)."""
    if precision == "float32":
        return []
    if precision != "bfloat16":
        raise ValueError(f"precision {precision!r}: float32 or bfloat16")
    return (["--searnn-autocast", precision]
            + (["--searnn-decode-dtype", precision] if searnn else [])
            + (["--risk-decode-dtype", precision] if risk else []))


def post_process_of(prep) -> Optional[str]:
    """fairseq's ``--post-process`` of a prepared directory's subword units."""
    from fairseq_searnn.data.nmt_prepare import prep_info

    return {"sentencepiece": "sentencepiece", "subword-nmt": "subword_nmt"}.get(
        prep_info(prep)["bpe"])
