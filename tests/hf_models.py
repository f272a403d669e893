"""Tiny ``transformers`` models built from configs (random weights, no download) and a toy
translation task for the ``test_hf_*`` tests."""

import random

import torch

VOCAB = 24


def marian(seed=0):
    """A tiny ``MarianMTModel`` (Marian's conventions: EOS 0, unk 1, pad = decoder start =
    the last id)."""
    from transformers import MarianConfig, MarianMTModel

    torch.manual_seed(seed)
    cfg = MarianConfig(vocab_size=VOCAB, d_model=16, encoder_layers=1, decoder_layers=2,
                       encoder_attention_heads=2, decoder_attention_heads=2,
                       encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=64,
                       pad_token_id=VOCAB - 1, eos_token_id=0, decoder_start_token_id=VOCAB - 1,
                       forced_eos_token_id=0, dropout=0.0, attention_dropout=0.0,
                       activation_dropout=0.0)
    return MarianMTModel(cfg)


def t5(seed=0):
    """A tiny ``T5ForConditionalGeneration`` (pad = decoder start 0, EOS 1, unk 2; relative
    position buckets, tied embeddings)."""
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(seed)
    cfg = T5Config(vocab_size=VOCAB, d_model=16, d_kv=8, d_ff=32, num_layers=1,
                   num_decoder_layers=2, num_heads=2, relative_attention_num_buckets=8,
                   pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, dropout_rate=0.0)
    return T5ForConditionalGeneration(cfg)


BUILDERS = {"marian": marian, "t5": t5}


def content_ids(model):
    """Ids that are not special for the model's config."""
    c = model.config
    return [i for i in range(VOCAB) if i not in (c.pad_token_id, c.eos_token_id, 1, 2)]


def toy_batch(model, n=6, seed=1, max_len=6):
    """``input_ids``, ``attention_mask`` (right-padded) and ``labels`` (-100 after EOS) of a
    toy task: the target is the source reversed, each token mapped to another, tokens of the
    first two kinds doubled (target lengths differ from source lengths)."""
    rng = random.Random(seed)
    ids = content_ids(model)
    pad, eos = model.config.pad_token_id, model.config.eos_token_id
    srcs, tgts = [], []
    for _ in range(n):
        src = [rng.choice(ids) for _ in range(rng.randint(1, max_len))]
        tgt = []
        for tok in reversed(src):
            mapped = ids[(ids.index(tok) * 7 + 3) % len(ids)]
            tgt += [mapped, mapped] if ids.index(tok) < 2 else [mapped]
        srcs.append(src + [eos])
        tgts.append(tgt + [eos])
    S, T = max(map(len, srcs)), max(map(len, tgts))
    input_ids = torch.tensor([s + [pad] * (S - len(s)) for s in srcs])
    labels = torch.tensor([t + [-100] * (T - len(t)) for t in tgts])
    return {"input_ids": input_ids, "attention_mask": input_ids.ne(pad).long(),
            "labels": labels}


def quick_fit(model, steps=80, lr=0.01):
    """A few Adam steps of the model's own cross-entropy on toy batches, so that greedy
    decoding ends with EOS at various lengths; returns the model in eval mode."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for step in range(steps):
        loss = model(**toy_batch(model, n=16, seed=100 + step)).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()
