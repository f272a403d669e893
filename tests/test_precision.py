"""Precision: the low-precision copy for decoding, autocast regions, and the SeaRNN criterions
and the task under bfloat16 (equivalences within a stated tolerance, criterion contract)."""

import pytest
import torch

import helpers
from fairseq_searnn.search import precision

REF_HAMMING = ["--rollin", "reference", "--rollout", "reference", "--searnn-reference", "copy",
               "--searnn-cost", "hamming"]
#: bfloat16 keeps 8 significant bits: losses and gradients agree to about 1 % relative
BF16_TOL = {"rtol": 2e-2, "atol": 2e-2}


def test_dtype_names_and_errors():
    assert precision.dtype_of(None) is torch.float32
    assert precision.dtype_of("bfloat16") is torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype 'half'"):
        precision.dtype_of("half")
    assert isinstance(precision.fast_bfloat16(), bool)


class _Wrapper(torch.nn.Module):  # a distributed wrapper's ``.module`` convention
    def __init__(self, module):
        super().__init__()
        self.module = module


def test_low_precision_copy_follows_the_source_weights():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    model.train()
    assert precision.LowPrecisionCopy(torch.float32)(model) is model
    make = precision.LowPrecisionCopy(torch.bfloat16)
    loss = model(torch.randn(5, 4)).sum()
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    low = make(_Wrapper(model))
    assert not low.training and model.training
    for a, b in zip(low.state_dict().values(), model.state_dict().values()):
        assert a.dtype == (torch.bfloat16 if b.is_floating_point() else b.dtype)
        torch.testing.assert_close(a, b.to(a.dtype))
    assert all(not p.requires_grad and p.grad is None for p in low.parameters())
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))
    # an optimizer writes p.data in place (no version counter sees it): the copy follows
    model[0].weight.data.add_(1.0)
    again = make(model)
    assert again is low  # the same module, values refreshed
    torch.testing.assert_close(again[0].weight, model[0].weight.to(torch.bfloat16))


def test_autocast_float32_disables_an_outer_region():
    a, b = torch.randn(3, 4), torch.randn(4, 2)
    cpu = torch.device("cpu")
    with precision.autocast(cpu, torch.bfloat16):
        assert (a @ b).dtype is torch.bfloat16
        with precision.autocast(cpu, torch.float32):
            assert (a @ b).dtype is torch.float32
        with precision.decoding(torch.bfloat16, cpu):
            assert (a @ b).dtype is torch.float32 and not torch.is_grad_enabled()


@pytest.mark.parametrize("arch", ["lstm", "transformer"])
def test_ll_reference_hamming_equals_cross_entropy_under_autocast(data_bin, arch):
    _, task, model, crit = helpers.build(data_bin, arch, "searnn_ll",
                                         REF_HAMMING + ["--searnn-decode-dtype", "bfloat16"])
    cfg = helpers.parse_cfg(helpers.train_argv(task.cfg.data, arch, "cross_entropy"))
    ce = task.build_criterion(cfg.criterion)
    sample = helpers.valid_batch(task, 8)
    model.train()
    params = list(model.parameters())
    with precision.autocast(torch.device("cpu"), torch.bfloat16):
        loss, size, _ = crit(model, sample)
        want, want_size, _ = ce(model, sample)
    assert size == want_size
    torch.testing.assert_close(loss, want)  # the same bfloat16 computation
    g1 = torch.autograd.grad(loss, params)
    g2 = torch.autograd.grad(want, params)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)
    with torch.no_grad():
        full, _, _ = ce(model, sample)
    torch.testing.assert_close(loss.detach(), full, **BF16_TOL)  # bfloat16 against float32


@pytest.mark.parametrize("arch", ["lstm", "transformer"])
def test_bfloat16_decoding_keeps_the_criterion_contract(data_bin, arch):
    extra = ["--rollin", "learned", "--rollout", "mixed", "--searnn-cost", "edit",
             "--searnn-tokens", "3", "--searnn-decode-dtype", "bfloat16"]
    _, task, model, crit = helpers.build(data_bin, arch, "searnn_skl", extra)
    _, _, _, avg = helpers.build(data_bin, arch, "searnn_skl", extra + ["--sentence-avg"])
    helpers.quick_fit(task, model)
    sample = helpers.valid_batch(task, 8)
    model.train()
    with precision.autocast(torch.device("cpu"), torch.bfloat16):
        torch.manual_seed(5)
        loss, size, log = crit(model, sample)
        torch.manual_seed(5)
        per_cell, size2, _ = crit(model, sample, reduce=False)
        torch.manual_seed(5)
        loss3, size3, _ = avg(model, sample)
    assert torch.isfinite(loss) and per_cell.dim() == 2
    torch.testing.assert_close(per_cell.sum(), loss)
    torch.testing.assert_close(loss3, loss)
    assert size == size2 == log["searnn_cells"] and size3 == sample["target"].size(0)
    assert log["searnn_learned_rollouts"] > 0
    # the roll-ins decoded by the bfloat16 copy, the training forward by the model itself
    assert next(model.parameters()).dtype is torch.float32


def test_task_autocast_option_trains_and_validates(data_bin, tmp_path):
    """--searnn-autocast bfloat16: a short fairseq-train run with a SeaRNN criterion, bfloat16
    decoding and validation BLEU; weights and optimizer state stay float32."""
    argv = helpers.train_argv(data_bin, "lstm", "searnn_skl", [
        "--task", "searnn_translation", "--searnn-autocast", "bfloat16",
        "--searnn-decode-dtype", "bfloat16", "--searnn-tokens", "3", "--searnn-cost", "bleu",
        "--eval-searnn-cost", "bleu", "--max-update", "4", "--save-dir", str(tmp_path),
        "--no-epoch-checkpoints"])
    helpers.run_training(argv)
    state = torch.load(tmp_path / "checkpoint_last.pt", weights_only=False)
    assert all(v.dtype is torch.float32 for v in state["model"].values()
               if v.is_floating_point())
    exp_avg = [s["exp_avg"] for s in state["last_optimizer_state"]["state"].values()]
    assert exp_avg and all(t.dtype is torch.float32 for t in exp_avg)


def test_autocast_option_rejects_float16_and_other_mixed_precision(data_bin):
    with pytest.raises(SystemExit):
        helpers.parse_cfg(helpers.train_argv(data_bin, "lstm", "cross_entropy", [
            "--task", "searnn_translation", "--searnn-autocast", "float16"]))
    with pytest.raises(ValueError, match="--searnn-autocast bfloat16 cannot be combined with "
                                         "--amp"):
        helpers.build(data_bin, "lstm", extra=["--searnn-autocast", "bfloat16", "--amp"],
                      task="searnn_translation")
