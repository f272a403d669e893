"""The demo's command line (:func:`parse`) and its SeaRNN fine-tune's criterion."""

import argparse
from typing import List

from fairseq_searnn.recipes import criterion_args


def searnn_args(args) -> List[str]:
    """The SeaRNN fine-tune's criterion: the paper's spelling setting (learned roll-in, mixed
    roll-out, edit cost; ``--searnn-loss kl`` tries every token at every cell, ``skl``
    ``--tokens`` sampled ones), roll-outs up to the source length + 2 symbols."""
    return criterion_args(args.searnn_loss, "edit", tokens=args.tokens,
                          sampling=args.token_sampling, alpha=args.alpha, max_len=(1, 2))


def parse(argv=None):
    """The demo's options; ``--quick`` caps the sizes for a smoke run."""
    from fairseq_searnn import demo  # the package's docstring heads ``--help``

    p = argparse.ArgumentParser(prog="fairseq-searnn-demo",
                                description=demo.__doc__.split("\n")[0])
    p.add_argument("--corpus", help="English text file (default: Python's own documentation)")
    p.add_argument("--out", default="fairseq-searnn-demo",
                   help="output folder: the plot, and the data under work/")
    p.add_argument("--pretrain-updates", type=int, default=2500,
                   help="MLE updates from scratch (Adam --lr)")
    p.add_argument("--finetune-updates", type=int, default=300,
                   help="SeaRNN fine-tuning updates from the pre-trained model")
    p.add_argument("--mle-finetune-updates", type=int, default=1500,
                   help="MLE fine-tuning updates from the pre-trained model (default: about "
                   "the time of the SeaRNN fine-tune)")
    p.add_argument("--quick", action="store_true",
                   help="a ~30 s smoke run: 2000 lines, 2 noisy copies, 40 + 8 / 4 updates")
    p.add_argument("--p", type=float, default=0.3, help="substitution noise probability")
    p.add_argument("--max-len", type=int, default=10, help="T, end marker included")
    p.add_argument("--copies", type=int, default=4, help="noisy copies of the training set")
    p.add_argument("--valid", type=int, default=500)
    p.add_argument("--test", type=int, default=1000)
    p.add_argument("--max-lines", type=int, default=0, help="use only N corpus lines")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3, help="pre-training Adam step")
    p.add_argument("--finetune-lr", type=float, default=3e-4,
                   help="fine-tuning Adam step (both fine-tunes, fresh optimiser state)")
    p.add_argument("--searnn-loss", choices=["kl", "skl"], default="skl",
                   help="kl: every token at every cell; skl: --tokens sampled ones")
    p.add_argument("--tokens", type=int, default=5, help="skl: tokens per cell (K)")
    p.add_argument("--token-sampling", default="biased", help="skl: how tokens are drawn")
    p.add_argument("--alpha", type=float, default=None,
                   help="KL target softmax(-alpha * cost) (default: the criterion's, 50 for "
                   "the edit cost)")
    p.add_argument("--evals", type=int, default=6, help="validation points per curve")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    args = p.parse_args(argv)
    if args.quick:
        args.pretrain_updates = min(args.pretrain_updates, 40)
        args.finetune_updates = min(args.finetune_updates, 4)
        args.mle_finetune_updates = min(args.mle_finetune_updates, 8)
        args.copies = min(args.copies, 2)
        args.valid, args.test = min(args.valid, 200), min(args.test, 200)
        args.max_lines = args.max_lines or 2000
        args.evals = min(args.evals, 2)
    if min(args.pretrain_updates, args.finetune_updates, args.mle_finetune_updates,
           args.evals) < 1:
        p.error("--pretrain-updates, --finetune-updates, --mle-finetune-updates and --evals "
                "must be >= 1")
    return args
