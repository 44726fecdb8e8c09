"""Delay interleave, sequence template, loss masking/weights of the multi-stream LM."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from svslm.lm.checkpoint import load_checkpoint
from svslm.lm.data import SVSDataset, read_data_json
from svslm.lm.model import LossConfig
from svslm.lm.sequence import SequenceConfig, build_example, collate, delay
from svslm.testing.lm import make_init_checkpoint, make_tiny_dump, tiny_lm_config


def test_delay_shifts_stream_n_by_n_and_keeps_the_length():
    """ESPnet's delay interleave: out[t, n] = x[t - n, n], <pad> before, cut to the input's length."""
    x = torch.randint(1, 100, (2, 12, 9))
    y = delay(x, pad=0)
    assert y.shape == x.shape
    for n in range(9):
        assert torch.equal(y[:, n:, n], x[:, : 12 - n, n])
        assert (y[:, :n, n] == 0).all()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm_model")
    paths = make_tiny_dump(root, n_train=4, n_dev=2)
    make_init_checkpoint(root / "init", tiny_lm_config(), 16, 8)
    model = load_checkpoint(root / "init")
    return model, SVSDataset(read_data_json(paths["train"]), model.vocab)


def test_template_order_pads_and_target_mask(tiny):
    model, ds = tiny
    v = model.vocab
    conf = SequenceConfig(speaker_prompt_length=12)
    utt = ds.split.utt_ids[0]
    svs = ds.split.svs_lb[utt]
    prompt, target = ds.split.prompt(utt), ds.split.target(utt)
    seq, mask = build_example(v, svs, prompt, target, utt, conf)
    names = [v.token_list[i] for i in seq[:3, 0]]
    assert names == ["<sos/eos>", "<svs_task>", "<svs_lb_start/end>"]
    assert [v.token_list[i] for i in seq[3 : 3 + len(svs), 0]] == svs
    assert (seq[: 3 + len(svs), 1:] == v.pad).all()  # text rows: other streams <pad>
    p0 = 3 + len(svs) + 8  # eight inter-segment <pad> rows after every segment
    assert (seq[3 + len(svs) : p0] == v.pad).all()
    assert v.token_list[seq[p0, 0]] == "<spk_start/end>"
    assert len(prompt) == 10 and (seq[p0 + 11 : p0 + 13] == v.pad).all()  # prompt padded to 12 frames
    t_marker = p0 + 1 + 12 + 8
    assert v.token_list[seq[t_marker, 0]] == "<codec_ssl_start/end>"
    t0 = t_marker + 1
    k = int(target[1, 0])
    assert v.token_list[seq[t0 + 1, 0]] == (f"<ssl_code{k + 1}>" if k else "<pad>")  # 1-based; id 0 is ESPnet's <pad>
    assert v.token_list[seq[t0, 3]] == f"<codec_layer2_code{target[0, 3]}>"
    assert seq[t0 + len(target), 0] == v.eos and len(seq) == t0 + len(target) + 1 + 8
    assert not mask[:t_marker].any()
    assert mask[t_marker, 0] and not mask[t_marker, 1:].any()  # the start marker is a stream-0 target
    assert np.array_equal(mask[t0 : t0 + len(target)], seq[t0 : t0 + len(target)] != v.pad)
    assert mask[t0 + len(target), 0] and not mask[t0 + len(target) :, 1:].any()
    whole, _ = build_example(v, svs, prompt, target, utt, SequenceConfig(speaker_prompt_length=12, loss_region="whole"))
    assert np.array_equal(whole, seq)


def test_long_prompts_are_cropped_and_ssl_id0_can_be_kept(tiny):
    model, ds = tiny
    v = model.vocab
    utt = ds.split.utt_ids[0]
    prompt, target = ds.split.prompt(utt), ds.split.target(utt)
    conf = SequenceConfig(speaker_prompt_length=4, ssl_id0="token")
    seq, _ = build_example(v, ds.split.svs_lb[utt], prompt, target, utt, conf, random.Random(0))
    p0 = 3 + len(ds.split.svs_lb[utt]) + 8
    crop = seq[p0 + 1 : p0 + 5]
    local = v.local_to_vocab(prompt, "p", "token")
    assert any(np.array_equal(crop, local[s : s + 4]) for s in range(len(prompt) - 4))
    zero = target.copy()
    zero[0, 0] = 0
    kept, _ = build_example(v, ds.split.svs_lb[utt], prompt, zero, utt, conf)
    assert v.token_list[kept[p0 + 1 + 4 + 8 + 1, 0]] == "<ssl_code1>"


def test_local_ids_out_of_range_name_the_utterance(tiny):
    model, ds = tiny
    bad = ds.split.target(ds.split.utt_ids[0]).copy()
    bad[5, 2] = 8  # codebook size is 8
    with pytest.raises(ValueError, match=r"uttX codec_ssl: stream 2 frame 5 has id 8"):
        build_example(model.vocab, ds.split.svs_lb[ds.split.utt_ids[0]], None, bad, "uttX")


def _batch(ds, n=2):
    return collate([ds.example(u) for u in ds.split.utt_ids[:n]], ds.vocab.pad)


def test_loss_ignores_everything_outside_the_target_region(tiny):
    model, ds = tiny
    batch = _batch(ds)
    loss, _ = model(batch.inputs, batch.attention_mask, batch.targets, batch.loss_mask)
    # Changing targets outside the loss mask (prefix, padding) must not change the loss.
    targets = batch.targets.clone()
    targets[~batch.loss_mask] = model.vocab.id("<unk>")
    loss2, _ = model(batch.inputs, batch.attention_mask, targets, batch.loss_mask)
    assert torch.allclose(loss, loss2)
    # Padding the batch with a longer neighbour must not change an utterance's loss.
    alone = collate([ds.example(ds.split.utt_ids[0])], ds.vocab.pad)
    padded = collate([ds.example(u) for u in ds.split.utt_ids[:1] + [max(ds.lengths, key=ds.lengths.get)]], ds.vocab.pad)
    l_alone, _ = model(alone.inputs, alone.attention_mask, alone.targets, alone.loss_mask)
    keep = padded.loss_mask.clone()
    keep[1] = False
    l_pad, _ = model(padded.inputs, padded.attention_mask, padded.targets, keep)
    assert padded.inputs.shape[1] > alone.inputs.shape[1]
    assert torch.allclose(l_alone, l_pad, atol=1e-5)


def test_loss_is_espnets_weighted_sum_over_stream0_tokens(tiny):
    model, ds = tiny
    batch = _batch(ds)
    loss, stats = model(batch.inputs, batch.attention_mask, batch.targets, batch.loss_mask)
    # Reference: every (position, stream) term by hand from the full logits.
    v = model.vocab
    with torch.no_grad():
        logits = model.all_logits(batch.inputs, batch.attention_mask)  # [B, L, nq, V]
    weight = v.class_weights(model.loss_conf.modality_weights)
    c0, c1 = v.codec_range
    total = 0.0
    for b, t, n in batch.loss_mask.nonzero().tolist():
        y = int(batch.targets[b, t, n])
        if n == 0:
            total += float(weight[y] * -torch.log_softmax(logits[b, t, 0], -1)[y])
        elif c0 <= y < c1:
            total += float(weight[y] * -torch.log_softmax(logits[b, t, n, c0:c1], -1)[y - c0])
    assert abs(loss.item() - total / float(batch.loss_mask[..., 0].sum())) < 1e-4
    assert weight[v.id("<sos/eos>")] == 10.0 and weight[v.ssl_start] == 0.5 and weight[v.codec_start] == 0.0625
    assert weight[v.id("svs_a")] == 1.0  # not listed -> 1
    model.loss_conf = LossConfig(modality_weights={"ssl": 1.0, "codec": 0.0, "special_token": 0.0})
    ssl_only, _ = model(batch.inputs, batch.attention_mask, batch.targets, batch.loss_mask)
    model.loss_conf = LossConfig()
    assert ssl_only < loss
    assert all(0 <= stats[f"acc_stream{n}"] <= 1 for n in range(9))
    assert stats["ce_stream1"] < np.log(len(model.vocab))


def test_codec_ce_uses_codec_rows_only(tiny):
    model, ds = tiny
    batch = _batch(ds, 1)
    _, before = model(batch.inputs, batch.attention_mask, batch.targets, batch.loss_mask)
    with torch.no_grad():  # a huge logit on a non-codec token must not touch codec-stream CE
        model.corelm.lm_head.weight[model.vocab.id("<unk>")] += 100.0
    _, after = model(batch.inputs, batch.attention_mask, batch.targets, batch.loss_mask)
    with torch.no_grad():
        model.corelm.lm_head.weight[model.vocab.id("<unk>")] -= 100.0
    assert torch.allclose(before["ce_stream3"], after["ce_stream3"])
    assert after["ce_stream0"] > before["ce_stream0"] + 1.0



def test_activation_checkpointing_keeps_loss_and_gradients(tiny):
    model, ds = tiny
    batch = _batch(ds)

    def grads():
        model.zero_grad()
        loss, _ = model(batch.inputs, batch.attention_mask, batch.targets, batch.loss_mask)
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}

    model.train()
    loss, plain = grads()
    model.corelm.decoders.model.activation_checkpointing_enable()
    try:
        loss_ckpt, ckpt = grads()
    finally:
        model.corelm.decoders.model.activation_checkpointing_disable()
        model.zero_grad()
        model.eval()
    assert torch.allclose(loss, loss_ckpt)
    assert all(torch.allclose(plain[n], ckpt[n], atol=1e-6) for n in plain)
    assert ckpt["corelm.emb.weight"].abs().sum() > 0  # gradients cross the checkpointed layers
