"""SearnnTrainer: a few Seq2SeqTrainer steps with the SeaRNN loss on the toy task lower it, log
the fairseq criterion's statistics, and the saved model reloads with the same outputs."""

import pytest
import torch

pytest.importorskip("transformers")

import hf_models  # noqa: E402

from fairseq_searnn.hf import SearnnLoss  # noqa: E402


def _examples(model, n, seed):
    batch = hf_models.toy_batch(model, n=n, seed=seed)
    return [{"input_ids": i[m.bool()].tolist(), "labels": lab[lab.ne(-100)].tolist()}
            for i, m, lab in zip(batch["input_ids"], batch["attention_mask"], batch["labels"])]


def _collate(pad):
    def collate(rows):
        S = max(len(r["input_ids"]) for r in rows)
        T = max(len(r["labels"]) for r in rows)
        ids = torch.tensor([r["input_ids"] + [pad] * (S - len(r["input_ids"])) for r in rows])
        labels = torch.tensor([r["labels"] + [-100] * (T - len(r["labels"])) for r in rows])
        return {"input_ids": ids, "attention_mask": ids.ne(pad).long(), "labels": labels}
    return collate


def test_trainer_steps_lower_the_searnn_loss_and_save(tmp_path):
    from transformers import MarianMTModel, Seq2SeqTrainingArguments

    from fairseq_searnn.hf import SearnnTrainer

    model = hf_models.marian()
    loss = SearnnLoss(model, loss="skl", tokens=3, rollin="learned", rollout="mixed",
                      cost="edit", cells=3, max_len_b=6)
    probe = hf_models.toy_batch(model, n=8, seed=999)
    model.eval()
    with torch.no_grad():
        before = float(loss(model, probe, seed=5))
    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path / "run"), max_steps=8, per_device_train_batch_size=8,
        learning_rate=0.01, logging_steps=4, save_strategy="no", report_to=[], use_cpu=True,
        seed=1, disable_tqdm=True, dataloader_num_workers=0)
    trainer = SearnnTrainer(model=model, args=args, train_dataset=_examples(model, 64, 11),
                            data_collator=_collate(model.config.pad_token_id),
                            searnn_loss=loss)
    trainer.train()
    model.eval()
    with torch.no_grad():
        after = float(loss(model, probe, seed=5))
    assert after < before
    logs = [row for row in trainer.state.log_history if "min_cost" in row]
    assert len(logs) == 2
    for key in ("nll_loss", "ref_cost", "learned_share", "target_ref_mass",
                "target_entropy", "rollouts_per_s"):
        assert all(key in row and row[key] == row[key] for row in logs)  # present, not NaN
    trainer.save_model(str(tmp_path / "saved"))
    again = MarianMTModel.from_pretrained(str(tmp_path / "saved")).eval()
    with torch.no_grad():
        torch.testing.assert_close(again(**probe).logits, model(**probe).logits)
        assert float(loss(again, probe, seed=5)) == pytest.approx(after)


def test_gradient_accumulation_divides_the_searnn_loss(tmp_path):
    """The SeaRNN loss is a mean per micro-batch: with k accumulation steps the Trainer must
    divide it by k (transformers would otherwise take it as already scaled, since Marian's
    forward accepts loss kwargs)."""
    from transformers import Seq2SeqTrainingArguments

    from fairseq_searnn.hf import SearnnTrainer

    model = hf_models.marian()
    loss = SearnnLoss(model, loss="skl", tokens=3, rollin="learned", cost="edit", max_len_b=6)
    batch = hf_models.toy_batch(model, n=4, seed=3)
    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path / "run"), max_steps=1, per_device_train_batch_size=4,
        gradient_accumulation_steps=2, report_to=[], use_cpu=True, seed=1, disable_tqdm=True)
    trainer = SearnnTrainer(model=model, args=args, train_dataset=_examples(model, 8, 1),
                            data_collator=_collate(model.config.pad_token_id),
                            searnn_loss=loss)
    trainer.current_gradient_accumulation_steps = 2
    items = int(batch["labels"].ne(-100).sum())
    got = trainer.training_step(model, batch, num_items_in_batch=items)
    with torch.no_grad():
        whole = loss(model, batch, seed=args.seed)
    torch.testing.assert_close(got, whole / 2)
