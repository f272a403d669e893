"""Roll-out throughput on a ``transformers`` model: the engine's learned roll-outs through
:class:`fairseq_searnn.hf.HFHost` against ``model.generate`` greedy decoding of the same
prefixes and candidates (``decoder_input_ids`` = start + roll-in prefix + candidate), generated
tokens per second, as ``bench_engine.py`` measures fairseq roll-outs against
``SequenceGenerator``. Also the cost of BLEU on detokenised words (:class:`TextCost`) against
BLEU on token ids over the same roll-outs.

Shape: a small Marian (2 + 2 layers, d_model 128, 4 heads, vocabulary 8,000, random weights:
roll-outs run to the length limit, the pessimistic case for both sides), 32 sentences, targets
of 10-20 tokens, reference roll-in, sKL K = 5, 4 cells per sentence, roll-outs up to 30
tokens. CPU, one torch thread.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/bench_hf.py [--repeats N] [--json FILE]``.
"""

import argparse
import json
import time

import torch

VOCAB, MAX_LEN = 8000, 30


def build(seed=1):
    from transformers import MarianConfig, MarianMTModel

    torch.manual_seed(seed)
    cfg = MarianConfig(vocab_size=VOCAB, d_model=128, encoder_layers=2, decoder_layers=2,
                       encoder_attention_heads=4, decoder_attention_heads=4,
                       encoder_ffn_dim=512, decoder_ffn_dim=512, max_position_embeddings=256,
                       pad_token_id=VOCAB - 1, eos_token_id=0, decoder_start_token_id=VOCAB - 1,
                       forced_eos_token_id=None)
    return MarianMTModel(cfg).eval()


def batch(n=32, seed=2):
    g = torch.Generator().manual_seed(seed)
    src_len = torch.randint(8, 21, (n,), generator=g)
    tgt_len = torch.randint(10, 21, (n,), generator=g)
    S, T = int(src_len.max()) + 1, int(tgt_len.max()) + 1
    ids = torch.full((n, S), VOCAB - 1)
    labels = torch.full((n, T), -100)
    for i in range(n):
        ids[i, : src_len[i]] = torch.randint(2, VOCAB - 1, (int(src_len[i]),), generator=g)
        ids[i, src_len[i]] = 0
        labels[i, : tgt_len[i]] = torch.randint(2, VOCAB - 1, (int(tgt_len[i]),), generator=g)
        labels[i, tgt_len[i]] = 0
    return {"input_ids": ids, "attention_mask": ids.ne(VOCAB - 1).long(), "labels": labels}


def best_of(fn, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def run(repeats=2):
    from fairseq_searnn.hf import SearnnLoss

    model, data = build(), batch()
    loss = SearnnLoss(model, loss="skl", tokens=5, rollin="reference", rollout="learned",
                      cost="bleu", cells=4, max_len_b=MAX_LEN)
    sample = loss.sample(data)
    host = loss.host(model)
    pad, eos = loss.pad, loss.eos
    engine_s = float("inf")
    for _ in range(repeats):
        res = loss.search.collect(host, sample, seed=1, keep_hypotheses=True)
        engine_s = min(engine_s, res.stats["time_rollouts"])
    entries, hyps = res.hypotheses
    b, t, k = entries.unbind(1)
    a = res.candidates[b, t, k]
    learned = a.ne(eos)
    engine_tokens = int((hyps[learned].ne(pad).sum(1) - (t[learned] + 1)).sum())

    def generate():
        outputs = []
        for cell in range(int(t.max()) + 1):
            rows = (learned & t.eq(cell)).nonzero().squeeze(1)
            if rows.numel() == 0:
                continue
            prefix = torch.cat([res.rollin[b[rows], :cell], a[rows].unsqueeze(1)], 1)
            dec = torch.cat([prefix.new_full((rows.numel(), 1), host.start), prefix], 1)
            out = model.generate(input_ids=sample["net_input"]["src_tokens"][b[rows]],
                                 attention_mask=sample["net_input"]["attention_mask"][b[rows]],
                                 decoder_input_ids=dec, num_beams=1, do_sample=False,
                                 max_new_tokens=MAX_LEN - (cell + 1), eos_token_id=eos,
                                 pad_token_id=pad, bad_words_ids=[[pad]])
            outputs.append((rows, out[:, dec.size(1):]))
        return outputs

    with torch.no_grad():
        generate_s, outputs = best_of(generate, repeats)
    generate_tokens, same = 0, 0
    for rows, gen in outputs:
        for r, row in zip(rows.tolist(), gen.tolist()):
            body = row[: row.index(eos)] if eos in row else row
            body = [x for x in body if x != pad]
            generate_tokens += len(body)
            mine = [x for x in hyps[r].tolist() if x != pad][int(t[r]) + 1:]
            same += int(mine == body)
    n = int(learned.sum())
    costs = text_cost_overhead(loss, hyps, res, b, repeats)
    return {"rollouts": n, "engine_tokens": engine_tokens, "generate_tokens": generate_tokens,
            "engine_s": engine_s, "generate_s": generate_s,
            "engine_tokens_per_s": engine_tokens / engine_s,
            "generate_tokens_per_s": generate_tokens / generate_s,
            "ratio": (engine_tokens / engine_s) / (generate_tokens / generate_s),
            "identical_hypotheses": same / max(n, 1), **costs}


class _Pieces:
    """Detokenises ids as sentencepiece-style pieces (``▁`` opening a word every 3rd id), as a
    tokenizer's ``batch_decode`` would (the benchmark has no trained tokenizer)."""

    def batch_decode(self, rows, **kwargs):
        return ["".join(("▁" if i % 3 == 0 else "") + f"p{i}" for i in row).replace("▁", " ")
                for row in rows]


def text_cost_overhead(loss, hyps, res, b, repeats):
    """Seconds of BLEU on token ids and on detokenised words over the same roll-outs."""
    from fairseq_searnn import costs
    from fairseq_searnn.hf import TextCost

    target = res.rollin  # the reference roll-in is the target
    refs = target.masked_fill(target.eq(loss.eos), loss.pad)[b]
    ids_s, _ = best_of(lambda: costs.get_cost("bleu")(hyps, refs, loss.pad), repeats)
    text = TextCost(_Pieces(), "bleu")
    text_s, _ = best_of(lambda: text(hyps, refs, loss.pad), repeats)
    return {"bleu_ids_s": ids_s, "bleu_text_s": text_s, "text_over_ids": text_s / ids_s}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = {"torch_threads": torch.get_num_threads(), **run(args.repeats)}
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
