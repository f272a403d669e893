"""Fine-tune a ``transformers`` seq2seq model with SeaRNN: MLE first (``Seq2SeqTrainer``), then
SeaRNN from the MLE model (``SearnnTrainer``), each capped in minutes and steps, stopped after
``--patience`` validations without a better greedy BLEU (the best model kept), both scored on
the test set with greedy decoding and sacreBLEU (``result.json``).

Any ``--model-name-or-path`` with its tokenizer; without one, offline: a small Marian built
from a config, with a sentencepiece tokenizer trained on the training split (Multi30k here).
"""

import argparse
import json
import time
from pathlib import Path

import torch


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-name-or-path", help="a pre-trained model (default: a small Marian "
                   "from a config, with a sentencepiece tokenizer trained on --train)")
    p.add_argument("--raw-dir", default="../shared/data/multi30k/raw")
    p.add_argument("--src", default="de")
    p.add_argument("--tgt", default="en")
    p.add_argument("--train", default="train")
    p.add_argument("--valid", default="val")
    p.add_argument("--test", default="test2016")
    p.add_argument("--out", required=True)
    p.add_argument("--vocab", type=int, default=8000, help="offline tokenizer's vocabulary")
    p.add_argument("--max-train", type=int, help="first N training pairs only")
    p.add_argument("--max-valid", type=int, default=500, help="validation pairs scored")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--mle-minutes", type=float, default=30.0)
    p.add_argument("--mle-steps", type=int, default=100000)
    p.add_argument("--searnn-minutes", type=float, default=30.0)
    p.add_argument("--searnn-steps", type=int, default=100000)
    p.add_argument("--searnn-lr", type=float, default=1e-4)
    p.add_argument("--eval-steps", type=int, default=500)
    p.add_argument("--patience", type=int, default=5, help="validations without improvement")
    p.add_argument("--loss", default="skl", help="ll, kl, sll, skl")
    p.add_argument("--tokens", type=int, default=5)
    p.add_argument("--cost", default="bleu")
    p.add_argument("--rollin", default="learned")
    p.add_argument("--rollout", default="mixed")
    p.add_argument("--cells", type=int, default=5)
    p.add_argument("--mle-weight", type=float, default=0.0)
    p.add_argument("--text-cost", action="store_true", help="costs on detokenised words")
    return p.parse_args()


def read(raw, split, src, tgt, limit=None):
    pairs = list(zip(Path(raw, f"{split}.{src}").read_text().splitlines(),
                     Path(raw, f"{split}.{tgt}").read_text().splitlines()))
    return pairs[:limit] if limit else pairs


def offline_marian(args, out: Path):
    """A sentencepiece tokenizer trained on the training split (EOS 0, unk 1, pad last, as
    Marian's) and a small Marian model (3 + 3 layers, 256 units) from a config."""
    import sentencepiece as spm
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    tok_dir = out / "tokenizer"
    tok_dir.mkdir(parents=True, exist_ok=True)
    text = [s for pair in read(args.raw_dir, args.train, args.src, args.tgt) for s in pair]
    corpus = tok_dir / "corpus.txt"
    corpus.write_text("\n".join(text) + "\n")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(tok_dir / "spm"), vocab_size=args.vocab,
        eos_id=0, unk_id=1, bos_id=-1, pad_id=-1, character_coverage=1.0, minloglevel=2)
    proc = spm.SentencePieceProcessor(model_file=str(tok_dir / "spm.model"))
    vocab = {proc.id_to_piece(i): i for i in range(proc.get_piece_size())}
    vocab["<pad>"] = len(vocab)
    (tok_dir / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = MarianTokenizer(str(tok_dir / "spm.model"), str(tok_dir / "spm.model"),
                                str(tok_dir / "vocab.json"), source_lang=args.src,
                                target_lang=args.tgt)
    cfg = MarianConfig(vocab_size=len(vocab), d_model=256, encoder_layers=3,
                       decoder_layers=3, encoder_attention_heads=4, decoder_attention_heads=4,
                       encoder_ffn_dim=1024, decoder_ffn_dim=1024, max_position_embeddings=256,
                       pad_token_id=len(vocab) - 1, eos_token_id=0,
                       decoder_start_token_id=len(vocab) - 1, forced_eos_token_id=0,
                       dropout=0.1)
    return MarianMTModel(cfg), tokenizer


def encode(tokenizer, pairs):
    return [dict(tokenizer(s, text_target=t, truncation=True, max_length=128))
            for s, t in pairs]


def bleu_of(model, tokenizer, pairs, batch_size=64):
    """Greedy decoding of the sources, sacreBLEU of the detokenised output."""
    import sacrebleu

    model.eval()
    hyps = []
    with torch.no_grad():
        for i in range(0, len(pairs), batch_size):
            src = tokenizer([s for s, _ in pairs[i:i + batch_size]], return_tensors="pt",
                            padding=True, truncation=True, max_length=128)
            out = model.generate(**src, num_beams=1, do_sample=False, max_new_tokens=128)
            hyps += tokenizer.batch_decode(out, skip_special_tokens=True)
    return sacrebleu.corpus_bleu(hyps, [[t for _, t in pairs]]).score


class TimeCap:
    """Stops training after ``minutes`` (a ``TrainerCallback``)."""

    def __new__(cls, minutes):
        from transformers import TrainerCallback

        class Cap(TrainerCallback):
            def on_train_begin(self, args, state, control, **kw):
                self.start = time.monotonic()

            def on_step_end(self, args, state, control, **kw):
                if time.monotonic() - self.start > 60 * minutes:
                    control.should_training_stop = True

        return Cap()


def phase(name, model, tokenizer, args, data, minutes, steps, lr, searnn_loss=None):
    """One training phase; returns the best model (greedy validation BLEU) and its log."""
    import sacrebleu
    from transformers import (
        DataCollatorForSeq2Seq,
        EarlyStoppingCallback,
        Seq2SeqTrainer,
        Seq2SeqTrainingArguments,
    )

    from fairseq_searnn.hf import SearnnTrainer

    def metrics(pred):
        preds, labels = pred
        labels = labels.copy()
        labels[labels == -100] = tokenizer.pad_token_id
        preds[preds == -100] = tokenizer.pad_token_id
        hyps = tokenizer.batch_decode(preds, skip_special_tokens=True)
        refs = tokenizer.batch_decode(labels, skip_special_tokens=True)
        return {"bleu": sacrebleu.corpus_bleu(hyps, [refs]).score}

    targs = Seq2SeqTrainingArguments(
        output_dir=str(Path(args.out) / name), max_steps=steps, learning_rate=lr,
        per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=64,
        eval_strategy="steps", eval_steps=args.eval_steps, save_strategy="steps",
        save_steps=args.eval_steps, save_total_limit=2, load_best_model_at_end=True,
        metric_for_best_model="bleu", predict_with_generate=True, generation_num_beams=1,
        generation_max_length=128, logging_steps=max(1, args.eval_steps // 5), report_to=[],
        seed=args.seed, use_cpu=not torch.cuda.is_available(), disable_tqdm=True)
    kwargs = dict(model=model, args=targs, train_dataset=data["train"],
                  eval_dataset=data["valid"], data_collator=DataCollatorForSeq2Seq(tokenizer),
                  compute_metrics=metrics,
                  callbacks=[EarlyStoppingCallback(args.patience), TimeCap(minutes)])
    trainer = (SearnnTrainer(searnn_loss=searnn_loss, **kwargs) if searnn_loss
               else Seq2SeqTrainer(**kwargs))
    start = time.monotonic()
    trainer.train()
    trainer.save_model(str(Path(args.out) / name / "best"))
    return trainer.model, {"minutes": (time.monotonic() - start) / 60,
                           "steps": trainer.state.global_step,
                           "log": trainer.state.log_history}


def main():
    args = parse()
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from fairseq_searnn.hf import SearnnLoss

    if args.model_name_or_path:
        model = AutoModelForSeq2SeqLM.from_pretrained(args.model_name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path)
    else:
        model, tokenizer = offline_marian(args, out)
    train = read(args.raw_dir, args.train, args.src, args.tgt, args.max_train)
    valid = read(args.raw_dir, args.valid, args.src, args.tgt, args.max_valid)
    test = read(args.raw_dir, args.test, args.src, args.tgt)
    data = {"train": encode(tokenizer, train), "valid": encode(tokenizer, valid)}
    result = {"args": vars(args)}
    model, result["mle"] = phase("mle", model, tokenizer, args, data, args.mle_minutes,
                                 args.mle_steps, args.lr)
    result["mle"]["test_bleu"] = bleu_of(model, tokenizer, test)
    loss = SearnnLoss(model, tokenizer, args.loss, tokens=args.tokens, cost=args.cost,
                      rollin=args.rollin, rollout=args.rollout, cells=args.cells,
                      mle_weight=args.mle_weight, text_cost=args.text_cost)
    model, result["searnn"] = phase("searnn", model, tokenizer, args, data,
                                    args.searnn_minutes, args.searnn_steps, args.searnn_lr,
                                    searnn_loss=loss)
    result["searnn"]["test_bleu"] = bleu_of(model, tokenizer, test)
    (out / "result.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: {"test_bleu": result[k]["test_bleu"], "steps": result[k]["steps"],
                          "minutes": round(result[k]["minutes"], 2)}
                      for k in ("mle", "searnn")}))


if __name__ == "__main__":
    main()
