#!/usr/bin/python3
"""Build the seeded random-weight models that bench/peers.js runs on every peer.

For each shape (base, small) writes bench/models/<shape>/:
  config.json, model.safetensors        the wasmformer model (shared/spec/model-format.md),
                                        tools/seq2seq.py's Seq2SeqTransformer
  encoder.onnx                          src ids [1,S] int64 -> memory [1,S,d]
  cross_kv.onnx                         memory [1,S,d] -> cross_kv [L,2,1,h,S,d_k]
  decoder_step.onnx                     token [1,1], pos [1], past_kv [L,2,1,h,P,d_k], cross_kv
                                        -> logits [1,V], present_kv [L,2,1,h,P+1,d_k]
  encoder_q8.onnx, cross_kv_q8.onnx,    the same three graphs quantized as transformers.js makes
  decoder_step_q8.onnx                  its q8 models (onnxruntime's quantize_dynamic: int8
                                        weights, uint8 activations quantized at run time)
  reference.json, reference_logits.bin  the source ids, the 64 forced greedy ids and their
                                        logits [64,V] float32 from the full nn.Transformer

The ONNX graphs are the same weights re-expressed as an incremental decoder (own attention code,
no nn.MultiheadAttention), checked here against the full nn.Transformer forward. Both sets of
graphs are then run by onnxruntime (CPU, one thread), teacher-forced on PyTorch's ids: the float
graphs must give PyTorch's logits, and what the q8 graphs give is printed and recorded in
reference.json's "q8" (those figures are onnxruntime's arithmetic: the same on every run here,
but another CPU's kernels may round the float parts differently).

Run: .venv/bin/python tools/export_bench_models.py [--out bench/models] [--shapes base,small]
"""
import argparse
import inspect
import json
import logging
import math
import os

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F
from torch import nn

from onnxruntime.quantization import QuantType, quantize_dynamic

from seq2seq import Seq2SeqTransformer, sinusoid, write_safetensors

torch.set_num_threads(1)

SHAPES = {
    "base": dict(d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6,
                 dim_feedforward=2048, src_vocab_size=8000, tgt_vocab_size=8000, max_len=128),
    "small": dict(d_model=256, nhead=4, num_encoder_layers=3, num_decoder_layers=3,
                  dim_feedforward=1024, src_vocab_size=8000, tgt_vocab_size=8000, max_len=128),
}
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
SRC_LEN = 32
STEPS = 64
SEED = 1234
OPSET = 17
ATOL = 1e-4
GRAPHS = ("encoder", "cross_kv", "decoder_step")

# transformers.js's q8, as its scripts/quantize.py (quantize_q8) and scripts/convert.py make it:
# onnxruntime's dynamic (IntegerOps) quantization over every op type of its IntegerOpsRegistry
# (quantize_dynamic's default), QInt8 weights (QUInt8 only in graphs with Conv or onnxruntime-genai's
# attention ops: none here), QUInt8 activations, extra_options EnableSubgraph and MatMulConstBOnly.
# convert.py turns per_channel and reduce_range on for every model type outside its
# NO_PER_CHANNEL_REDUCE_RANGE_MODELS, and marian (opus-mt) is outside it. transformers.js builds its
# ONNXQuantizer itself; quantize_dynamic builds the same one after a shape inference that changes no
# weight. (Its onnxslim pass before quantizing has no counterpart here: torch's constant folding.)
Q8_OPTIONS = dict(per_channel=True, reduce_range=True, weight_type=QuantType.QInt8,
                  extra_options={"EnableSubgraph": True, "MatMulConstBOnly": True})


# ---------------------------------------------------------------- the model's weights

def randomize(model, gen):
    """Tutorial init (xavier on matrices) plus non-trivial biases and LayerNorm affines, so a
    loader that drops a bias or a norm weight produces different tokens."""
    for name, p in model.named_parameters():
        with torch.no_grad():
            if p.dim() > 1:
                bound = math.sqrt(6.0 / (p.shape[0] + p.shape[1]))
                p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * bound)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + (torch.rand(p.shape, generator=gen) * 2 - 1) * 0.1)
            else:
                p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * 0.1)


# ---------------------------------------------------------------- the incremental modules we export

def linear_params(weight, bias):
    return nn.Parameter(weight.detach().clone()), nn.Parameter(bias.detach().clone())


class Linear(nn.Module):
    def __init__(self, weight, bias):
        super().__init__()
        self.weight, self.bias = linear_params(weight, bias)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class Norm(nn.Module):
    def __init__(self, ln):
        super().__init__()
        self.weight, self.bias = linear_params(ln.weight, ln.bias)
        self.eps = ln.eps
        self.shape = tuple(ln.normalized_shape)  # a Python tuple, so the export sees a constant

    def forward(self, x):
        return F.layer_norm(x, self.shape, self.weight, self.bias, self.eps)


class Projections(nn.Module):
    """nn.MultiheadAttention's stacked in_proj split into q, k, v, plus out_proj."""

    def __init__(self, mha, nhead):
        super().__init__()
        d = mha.embed_dim
        w, b = mha.in_proj_weight, mha.in_proj_bias
        self.q = Linear(w[:d], b[:d])
        self.k = Linear(w[d:2 * d], b[d:2 * d])
        self.v = Linear(w[2 * d:], b[2 * d:])
        self.out = Linear(mha.out_proj.weight, mha.out_proj.bias)
        self.h, self.d_k = nhead, d // nhead

    def heads(self, x):  # [1, S, d] -> [1, h, S, d_k]
        return x.reshape(1, -1, self.h, self.d_k).transpose(1, 2)

    def attend(self, q, k, v):
        """q [1,h,Sq,d_k], k/v [1,h,Sk,d_k] -> [1,Sq,d]; no mask (the benchmark source has no
        pad, and one decoder step sees only past positions)."""
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.d_k)
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v)
        return self.out(ctx.transpose(1, 2).reshape(1, -1, self.h * self.d_k))


class FeedForward(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.linear1 = Linear(layer.linear1.weight, layer.linear1.bias)
        self.linear2 = Linear(layer.linear2.weight, layer.linear2.bias)

    def forward(self, x):
        return self.linear2(torch.relu(self.linear1(x)))


class EncoderLayer(nn.Module):
    def __init__(self, layer, nhead):
        super().__init__()
        self.self_attn = Projections(layer.self_attn, nhead)
        self.ff = FeedForward(layer)
        self.norm1, self.norm2 = Norm(layer.norm1), Norm(layer.norm2)

    def forward(self, x):
        a = self.self_attn
        x = self.norm1(x + a.attend(a.heads(a.q(x)), a.heads(a.k(x)), a.heads(a.v(x))))
        return self.norm2(x + self.ff(x))


class Encoder(nn.Module):
    """src ids [1,S] int64 -> memory [1,S,d]."""

    def __init__(self, m, nhead):
        super().__init__()
        d = m.transformer.d_model
        self.emb = nn.Parameter(m.src_tok_emb.embedding.weight.detach().clone())
        self.register_buffer("pe", m.positional_encoding.pos_embedding[:, 0, :].clone())
        self.scale = math.sqrt(d)
        self.layers = nn.ModuleList(EncoderLayer(l, nhead) for l in m.transformer.encoder.layers)
        self.norm = Norm(m.transformer.encoder.norm)

    def forward(self, src):
        x = F.embedding(src, self.emb) * self.scale + self.pe[: src.shape[1]].unsqueeze(0)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


class CrossKV(nn.Module):
    """memory [1,S,d] -> cross_kv [L,2,1,h,S,d_k]: every decoder layer's cross-attention K, V."""

    def __init__(self, m, nhead):
        super().__init__()
        self.attn = nn.ModuleList(Projections(l.multihead_attn, nhead)
                                  for l in m.transformer.decoder.layers)

    def forward(self, memory):
        return torch.stack([torch.stack([a.heads(a.k(memory)), a.heads(a.v(memory))])
                            for a in self.attn])


class DecoderLayer(nn.Module):
    def __init__(self, layer, nhead):
        super().__init__()
        self.self_attn = Projections(layer.self_attn, nhead)
        self.cross_q = Linear(*[t[: layer.multihead_attn.embed_dim] for t in
                                (layer.multihead_attn.in_proj_weight,
                                 layer.multihead_attn.in_proj_bias)])
        self.cross_out = Linear(layer.multihead_attn.out_proj.weight,
                                layer.multihead_attn.out_proj.bias)
        self.ff = FeedForward(layer)
        self.norm1, self.norm2, self.norm3 = Norm(layer.norm1), Norm(layer.norm2), Norm(layer.norm3)

    def forward(self, x, past, cross):
        """x [1,1,d], past [2,1,h,P,d_k], cross [2,1,h,S,d_k] -> x, present [2,1,h,P+1,d_k]."""
        a = self.self_attn
        k = torch.cat([past[0], a.heads(a.k(x))], dim=2)
        v = torch.cat([past[1], a.heads(a.v(x))], dim=2)
        x = self.norm1(x + a.attend(a.heads(a.q(x)), k, v))
        q = a.heads(self.cross_q(x))
        scores = torch.matmul(q, cross[0].transpose(2, 3)) / math.sqrt(a.d_k)
        ctx = torch.matmul(torch.softmax(scores, dim=-1), cross[1])
        x = self.norm2(x + self.cross_out(ctx.transpose(1, 2).reshape(1, -1, a.h * a.d_k)))
        return self.norm3(x + self.ff(x)), torch.stack([k, v])


class DecoderStep(nn.Module):
    """token [1,1] int64, pos [1] int64, past_kv [L,2,1,h,P,d_k], cross_kv [L,2,1,h,S,d_k]
    -> logits [1,V], present_kv [L,2,1,h,P+1,d_k]."""

    def __init__(self, m, nhead):
        super().__init__()
        self.emb = nn.Parameter(m.tgt_tok_emb.embedding.weight.detach().clone())
        self.register_buffer("pe", m.positional_encoding.pos_embedding[:, 0, :].clone())
        self.scale = math.sqrt(m.transformer.d_model)
        self.layers = nn.ModuleList(DecoderLayer(l, nhead) for l in m.transformer.decoder.layers)
        self.norm = Norm(m.transformer.decoder.norm)
        self.generator = Linear(m.generator.weight, m.generator.bias)

    def forward(self, token, pos, past_kv, cross_kv):
        x = F.embedding(token, self.emb) * self.scale + self.pe[pos].unsqueeze(0)  # [1,1,d]
        present = []
        for i, layer in enumerate(self.layers):
            x, kv = layer(x, past_kv[i], cross_kv[i])
            present.append(kv)
        return self.generator(self.norm(x))[:, 0, :], torch.stack(present)


# ---------------------------------------------------------------- files

def export(module, args, path, input_names, output_names, dynamic_axes):
    # torch 2's default exporter (dynamo) cannot name these dynamic axes; the TorchScript one can.
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    torch.onnx.export(module, args, path, opset_version=OPSET, do_constant_folding=True,
                      input_names=input_names, output_names=output_names,
                      dynamic_axes=dynamic_axes, **legacy)
    onnx.checker.check_model(path)


def quantize_q8(out_dir):
    """Writes <graph>_q8.onnx beside each float graph."""
    for name in GRAPHS:
        quantize_dynamic(os.path.join(out_dir, f"{name}.onnx"), os.path.join(out_dir, f"{name}_q8.onnx"),
                         **Q8_OPTIONS)
        onnx.checker.check_model(os.path.join(out_dir, f"{name}_q8.onnx"))


def ort_teacher_forced(out_dir, suffix, src_ids, ids, c):
    """onnxruntime (CPU, one thread) over the graphs <name><suffix>.onnx, fed bos + ids[:-1]
    -> logits [len(ids), V]: the inputs PyTorch's reference logits were computed from."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    encoder, cross_kv, step = (ort.InferenceSession(os.path.join(out_dir, f"{name}{suffix}.onnx"), so,
                                                    providers=["CPUExecutionProvider"]) for name in GRAPHS)
    h, d_k = c["nhead"], c["d_model"] // c["nhead"]
    (memory,) = encoder.run(None, {"src": np.array([src_ids], dtype=np.int64)})
    (cross,) = cross_kv.run(None, {"memory": memory})
    past = np.zeros((c["num_decoder_layers"], 2, 1, h, 0, d_k), dtype=np.float32)
    rows = []
    for pos, token in enumerate([BOS_ID] + ids[:-1]):
        logits, past = step.run(None, {"token": np.array([[token]], dtype=np.int64),
                                       "pos": np.array([pos], dtype=np.int64),
                                       "past_kv": past, "cross_kv": cross})
        rows.append(logits[0])
    return np.stack(rows)


def check_q8(out_dir, src_ids, ids, full_logits, c, shape):
    """The float graphs under onnxruntime must give PyTorch's logits; the q8 graphs' difference
    from them and how many argmax ids stay PyTorch's -> reference.json's "q8"."""
    reference = full_logits.numpy()
    float_logits = ort_teacher_forced(out_dir, "", src_ids, ids, c)
    q8_logits = ort_teacher_forced(out_dir, "_q8", src_ids, ids, c)
    float_diff = float(np.abs(float_logits - reference).max())
    assert float_diff < ATOL, f"onnxruntime's float graphs differ from nn.Transformer by {float_diff:.2e}"
    q8 = {"max_abs_logit_diff_vs_float_graphs": float(np.abs(q8_logits - float_logits).max()),
          "max_abs_logit_diff_vs_pytorch": float(np.abs(q8_logits - reference).max()),
          "argmax_equal_pytorch_ids": int((q8_logits.argmax(axis=1) == np.array(ids)).sum()),
          "steps": len(ids),
          "options": {**Q8_OPTIONS, "weight_type": Q8_OPTIONS["weight_type"].name}}
    size = lambda suffix: sum(os.path.getsize(os.path.join(out_dir, f"{n}{suffix}.onnx")) for n in GRAPHS)
    print(f"[{shape}] onnxruntime, teacher-forced on PyTorch's ids: float graphs max|dlogit| {float_diff:.2e}; "
          f"q8 graphs max|dlogit| {q8['max_abs_logit_diff_vs_float_graphs']:.2e} vs the float graphs, "
          f"argmax = PyTorch's id at {q8['argmax_equal_pytorch_ids']}/{len(ids)} steps, "
          f"{size('_q8') / 2**20:.1f} MiB of graphs vs {size('') / 2**20:.1f}")
    return q8


def config_for(shape):
    c = dict(SHAPES[shape])
    c.update(activation="relu", norm_first=False, layer_norm_eps=1e-5, final_norm=True,
             scale_embedding=True, pad_id=PAD_ID, bos_id=BOS_ID, eos_id=EOS_ID)
    return c


# ---------------------------------------------------------------- per shape

def forced_greedy(encoder, cross_kv, step, src, c):
    """STEPS forced greedy steps (argmax, never stopping at eos) -> ids, logits [STEPS,V]."""
    h, d_k = c["nhead"], c["d_model"] // c["nhead"]
    cross = cross_kv(encoder(src))
    past = torch.zeros(c["num_decoder_layers"], 2, 1, h, 0, d_k)
    token, ids, rows = BOS_ID, [], []
    for pos in range(STEPS):
        logits, past = step(torch.tensor([[token]]), torch.tensor([pos]), past, cross)
        token = int(torch.argmax(logits[0]))  # torch.argmax returns the first maximum
        ids.append(token)
        rows.append(logits[0])
    return ids, torch.stack(rows)


def build(shape, out_dir):
    c = config_for(shape)
    gen = torch.Generator().manual_seed(SEED + sum(map(ord, shape)))
    # the tutorial's [P, 1, d_model] sinusoid buffer, P = max_len
    positions = sinusoid(c["max_len"], c["d_model"], like_tutorial=True).unsqueeze(1)
    model = Seq2SeqTransformer(c, positions=positions).eval()
    randomize(model, gen)
    src_ids = torch.randint(3, c["src_vocab_size"], (SRC_LEN,), generator=gen)  # no pad/bos/eos
    src = src_ids.unsqueeze(0)  # [1, S]

    encoder, cross_kv, step = (Encoder(model, c["nhead"]).eval(), CrossKV(model, c["nhead"]).eval(),
                               DecoderStep(model, c["nhead"]).eval())
    with torch.no_grad():
        ids, step_logits = forced_greedy(encoder, cross_kv, step, src, c)
        tgt = torch.tensor([BOS_ID] + ids[:-1]).unsqueeze(1)  # [T, 1]
        # no pad mask: the source has no pad, and the ONNX graphs take none
        full_logits = model(src_ids.unsqueeze(1), tgt, pad_mask=False)[:, 0, :]  # [T, V]
        memory = model.encode(src_ids.unsqueeze(1), pad_mask=False)[:, 0]
        memory_diff = (memory - encoder(src)[0]).abs().max().item()
    logits_diff = (full_logits - step_logits).abs().max().item()
    top2 = torch.topk(full_logits, 2, dim=-1).values
    min_gap = (top2[:, 0] - top2[:, 1]).min().item()
    full_ids = torch.argmax(full_logits, dim=-1).tolist()
    print(f"[{shape}] encoder memory max|diff| {memory_diff:.2e}, step logits vs nn.Transformer "
          f"max|diff| {logits_diff:.2e}, smallest top-1/top-2 gap {min_gap:.2e}, "
          f"distinct ids {len(set(ids))}/{STEPS}")
    assert memory_diff < ATOL and logits_diff < ATOL, "incremental modules disagree with nn.Transformer"
    assert full_ids == ids, "teacher-forced argmax differs from the incremental greedy ids"

    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
    write_safetensors(model.state_dict(), os.path.join(out_dir, "model.safetensors"))

    h, d_k, L = c["nhead"], c["d_model"] // c["nhead"], c["num_decoder_layers"]
    memory = torch.zeros(1, 5, c["d_model"])
    cross = torch.zeros(L, 2, 1, h, 5, d_k)
    with torch.no_grad():
        export(encoder, (src[:, :5],), os.path.join(out_dir, "encoder.onnx"), ["src"], ["memory"],
               {"src": {1: "S"}, "memory": {1: "S"}})
        export(cross_kv, (memory,), os.path.join(out_dir, "cross_kv.onnx"), ["memory"],
               ["cross_kv"], {"memory": {1: "S"}, "cross_kv": {4: "S"}})
        # Traced with P = 3 so no size is frozen to 0; the P = 0 first step is run by peers.js.
        export(step, (torch.tensor([[BOS_ID]]), torch.tensor([3]), torch.zeros(L, 2, 1, h, 3, d_k),
                      cross), os.path.join(out_dir, "decoder_step.onnx"),
               ["token", "pos", "past_kv", "cross_kv"], ["logits", "present_kv"],
               {"past_kv": {4: "P"}, "cross_kv": {4: "S"}, "present_kv": {4: "P1"}})
    quantize_q8(out_dir)
    q8 = check_q8(out_dir, src_ids.tolist(), ids, full_logits, c, shape)

    with open(os.path.join(out_dir, "reference.json"), "w") as f:
        json.dump({"src_ids": src_ids.tolist(), "ids": ids, "steps": STEPS,
                   "min_top2_gap": min_gap, "q8": q8}, f)
    full_logits.numpy().astype("<f4").tofile(os.path.join(out_dir, "reference_logits.bin"))

    for name in sorted(os.listdir(out_dir)):
        size = os.path.getsize(os.path.join(out_dir, name))
        print(f"  {os.path.join(out_dir, name)}  {size / 2**20:.1f} MiB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--out", default=os.path.join(root, "bench", "models"))
    parser.add_argument("--shapes", default="base,small")
    args = parser.parse_args()
    # quantize_dynamic warns on every graph that it was not pre-processed (onnxruntime's
    # quant_pre_process); transformers.js does not pre-process either.
    logging.getLogger().setLevel(logging.ERROR)
    for shape in args.shapes.split(","):
        build(shape, os.path.join(args.out, shape))


if __name__ == "__main__":
    main()
