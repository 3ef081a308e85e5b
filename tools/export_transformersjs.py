#!/usr/bin/python3
"""Lay out Marian models as transformers.js 4 loads them from a local folder, for bench comparisons.

For each model writes bench/models/transformersjs/<name>/:
  config.json, generation_config.json,     the Hugging Face hub files (demo-de: copied unchanged
  model.safetensors, source.spm,           from models/en-de-messages; opus-shape: written here)
  target.spm, vocab.json, tokenizer_config.json
  tokenizer.json                           the source tokenizer as a `tokenizers` Unigram model,
                                           checked against MarianTokenizer on every held-out text
  onnx/encoder_model.onnx                  input_ids, attention_mask -> last_hidden_state
  onnx/decoder_model_merged.onnx           optimum's merged decoder, built by hand: one If on
                                           use_cache_branch over a no-cache and a with-cache graph
  onnx/*_quantized.onnx                    both quantized as transformers.js makes its q8 models
  reference.json                           the first 100 held-out sources, MarianTokenizer's ids
                                           and transformers' greedy generate() ids and margins

Models: demo-de is the trained demo (float16 weights, run here as float32); opus-shape has
opus-mt-en-de's shape (512 wide, 6+6 layers, 58101 tokens) with seeded random weights, non-zero
biases and random LayerNorm affines, and the demo's tokenizer with filler pieces no text produces.
onnxruntime (CPU, one thread) must reproduce transformers' logits, teacher-forced, within ATOL
(batch 1 and a padded batch of 2) and its greedy ids on all reference sentences; the q8 graphs'
agreement is only printed.

Run: /work/.venv/bin/python tools/export_transformersjs.py [--out bench/models/transformersjs]
         [--models demo-de,opus-shape]
"""
import argparse
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch
import transformers
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import quantize_dynamic
from sentencepiece import sentencepiece_model_pb2
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from torch import nn
from transformers import GenerationConfig, MarianConfig, MarianMTModel, MarianTokenizer

from export_bench_models import Q8_OPTIONS, export

torch.set_num_threads(1)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "models", "en-de-messages")
HUB_FILES = ("config.json", "generation_config.json", "model.safetensors", "source.spm", "target.spm",
             "vocab.json", "tokenizer_config.json")
OPUS_SHAPE = dict(d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
                  decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048,
                  activation_function="swish", scale_embedding=True, max_position_embeddings=512,
                  vocab_size=58101, decoder_vocab_size=58101, pad_token_id=58100,
                  decoder_start_token_id=58100, eos_token_id=0, bos_token_id=0, forced_eos_token_id=0,
                  share_encoder_decoder_embeddings=True, tie_word_embeddings=True)
OPUS_MAX_NEW_TOKENS = 32  # random weights rarely emit eos
SEED = 58101
REFERENCE_ITEMS = 100
ABSENT_SCORE = -1e6  # Unigram score of vocab.json pieces source.spm lacks: below any path of its pieces
ATOL = 1e-4  # on |ort - torch| / max(1, |torch|)
NEG = torch.finfo(torch.float32).min


# ---------------------------------------------------------------- the two model folders

def demo_de(out):
    """The trained demo: hub files copied unchanged, the model loaded as float32."""
    for name in HUB_FILES:
        shutil.copyfile(os.path.join(DEMO, name), os.path.join(out, name))
    return MarianMTModel.from_pretrained(out, dtype=torch.float32).eval()


def opus_vocab(demo_vocab, size):
    """The demo's pieces at their ids, fillers no text produces up to size - 2, `<pad>` last."""
    pieces = sorted((i, p) for p, i in demo_vocab.items() if p != "<pad>")
    assert [i for i, _ in pieces] == list(range(len(pieces))), "demo vocab.json ids are not 0..n-1"
    fillers = [f"\ue000{n}" for n in range(size - 1 - len(pieces))]
    return {p: i for i, p in enumerate([p for _, p in pieces] + fillers + ["<pad>"])}


def opus_tokenizer_files(out):
    for name in ("source.spm", "target.spm"):
        shutil.copyfile(os.path.join(DEMO, name), os.path.join(out, name))
    with open(os.path.join(DEMO, "vocab.json")) as f:
        vocab = opus_vocab(json.load(f), OPUS_SHAPE["vocab_size"])
    with open(os.path.join(out, "vocab.json"), "w") as f:
        json.dump(vocab, f, ensure_ascii=False, indent=2)
    with open(os.path.join(DEMO, "tokenizer_config.json")) as f:
        config = json.load(f)
    added = config["added_tokens_decoder"]
    added[str(vocab["<pad>"])] = added.pop(next(k for k, v in added.items() if v["content"] == "<pad>"))
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2)


def randomize(model, gen):
    """transformers' init, then random LayerNorm affines and biases (final_logits_bias too), so a
    loader that drops a bias or a norm changes the tokens. The norm weights get random signs: with
    positive ones the residual stream keeps the input token's embedding lined up with the tied
    output embedding, and greedy decoding repeats its first token to the end."""
    uniform = lambda shape, lo, hi: lo + (hi - lo) * torch.rand(shape, generator=gen)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name and name.endswith("weight"):
                sign = torch.randint(0, 2, p.shape, generator=gen) * 2 - 1
                p.copy_(sign * uniform(p.shape, 0.5, 1.5))
            elif name.endswith("bias"):
                p.copy_(uniform(p.shape, -0.2, 0.2))
        model.final_logits_bias.copy_(uniform(model.final_logits_bias.shape, -0.2, 0.2))


def opus_shape(out):
    """opus-mt-en-de's shape with seeded random weights, saved float32 and reloaded from disk."""
    torch.manual_seed(SEED)
    model = MarianMTModel(MarianConfig(**OPUS_SHAPE)).eval()
    randomize(model, torch.Generator().manual_seed(SEED))
    pad, eos = OPUS_SHAPE["pad_token_id"], OPUS_SHAPE["eos_token_id"]
    model.generation_config = GenerationConfig(
        bad_words_ids=[[pad]], bos_token_id=eos, decoder_start_token_id=pad, eos_token_id=eos,
        forced_eos_token_id=eos, pad_token_id=pad, num_beams=4, max_length=512)
    model.save_pretrained(out)
    opus_tokenizer_files(out)
    reloaded = MarianMTModel.from_pretrained(out, dtype=torch.float32).eval()
    saved, loaded = model.state_dict(), reloaded.state_dict()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved), "opus-shape did not reload as saved"
    return reloaded


def check_opus_tokenizer(out, texts):
    demo, opus = MarianTokenizer.from_pretrained(DEMO), MarianTokenizer.from_pretrained(out)
    assert (len(opus), opus.pad_token_id) == (OPUS_SHAPE["vocab_size"], OPUS_SHAPE["pad_token_id"])
    for text in texts:
        assert demo(text)["input_ids"] == opus(text)["input_ids"], f"opus-shape tokenizes {text!r} apart"


# ---------------------------------------------------------------- tokenizer.json

def write_tokenizer_json(folder):
    """source.spm as a `tokenizers` Unigram over vocab.json's ids (SentencePiece's scores;
    pieces it lacks get ABSENT_SCORE), nmt_nfkc normalization, `</s>` appended."""
    spm = sentencepiece_model_pb2.ModelProto()
    with open(os.path.join(folder, "source.spm"), "rb") as f:
        spm.ParseFromString(f.read())
    assert spm.normalizer_spec.name == "nmt_nfkc" and spm.normalizer_spec.remove_extra_whitespaces
    scores = {p.piece: p.score for p in spm.pieces}
    with open(os.path.join(folder, "vocab.json")) as f:
        vocab = sorted((i, p) for p, i in json.load(f).items())
    assert [i for i, _ in vocab] == list(range(len(vocab))), "vocab.json ids are not 0..n-1"
    ids = {p: i for i, p in vocab}
    tok = Tokenizer(models.Unigram([(p, scores.get(p, ABSENT_SCORE)) for _, p in vocab],
                                   unk_id=ids["<unk>"], byte_fallback=False))
    # SentencePiece's nmt_nfkc: the charsmap, then no leading/trailing and no repeated spaces
    tok.normalizer = normalizers.Sequence([
        normalizers.Precompiled(spm.normalizer_spec.precompiled_charsmap),
        normalizers.Strip(left=True, right=True), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A $B </s>",
                                                       special_tokens=[("</s>", ids["</s>"])])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("</s>", "<unk>", "<pad>")])
    tok.save(os.path.join(folder, "tokenizer.json"))


def check_tokenizer_json(folder, texts):
    marian = MarianTokenizer.from_pretrained(folder)
    fast = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    for text in texts:
        want, got = marian(text)["input_ids"], fast.encode(text).ids
        assert want == got, f"tokenizer.json disagrees on {text!r}: {got} vs MarianTokenizer's {want}"
    print(f"  tokenizer.json = MarianTokenizer on all {len(texts)} held-out texts")
    return marian


# ---------------------------------------------------------------- the modules we export

def key_bias(mask):
    """[B, S] 0/1 -> additive [B, 1, 1, S]: NEG where the key is padding."""
    return (1.0 - mask[:, None, None, :].to(torch.float32)) * NEG


def causal_bias(new, past):
    """[new, past + new] additive: NEG where a key comes after the query."""
    query = torch.arange(new).unsqueeze(1) + past
    return (torch.arange(past + new).unsqueeze(0) > query).to(torch.float32) * NEG


class Attention(nn.Module):
    """A MarianAttention's projections, with our own head split and softmax."""

    def __init__(self, attn):
        super().__init__()
        self.q, self.k, self.v, self.out = attn.q_proj, attn.k_proj, attn.v_proj, attn.out_proj
        self.h, self.d_k = attn.num_heads, attn.head_dim

    def split(self, x):  # [B, T, d] -> [B, h, T, d_k]
        return x.reshape(x.shape[0], -1, self.h, self.d_k).transpose(1, 2)

    def attend(self, x, k, v, bias):
        scores = torch.matmul(self.split(self.q(x)), k.transpose(2, 3)) * self.d_k ** -0.5 + bias
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2)
        return self.out(ctx.reshape(x.shape[0], -1, self.h * self.d_k))


class EncoderLayer(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.attn, self.act = Attention(layer.self_attn), layer.activation_fn
        self.norm1, self.fc1, self.fc2, self.norm2 = (layer.self_attn_layer_norm, layer.fc1, layer.fc2,
                                                      layer.final_layer_norm)

    def forward(self, x, bias):
        a = self.attn
        x = self.norm1(x + a.attend(x, a.split(a.k(x)), a.split(a.v(x)), bias))
        return self.norm2(x + self.fc2(self.act(self.fc1(x))))


class Encoder(nn.Module):
    """input_ids, attention_mask [B, S] int64 -> last_hidden_state [B, S, d]."""

    def __init__(self, model):
        super().__init__()
        enc = model.model.encoder
        self.embed, self.scale = enc.embed_tokens, enc.embed_scale
        self.register_buffer("positions", enc.embed_positions.weight.detach().clone())
        self.layers = nn.ModuleList(EncoderLayer(l) for l in enc.layers)

    def forward(self, input_ids, attention_mask):
        x = self.embed(input_ids) * self.scale + self.positions[: input_ids.shape[1]]
        bias = key_bias(attention_mask)
        for layer in self.layers:
            x = layer(x, bias)
        return x


class DecoderLayer(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.self_attn, self.cross, self.act = Attention(layer.self_attn), Attention(layer.encoder_attn), layer.activation_fn
        self.norm1, self.norm2, self.norm3 = (layer.self_attn_layer_norm, layer.encoder_attn_layer_norm,
                                              layer.final_layer_norm)
        self.fc1, self.fc2 = layer.fc1, layer.fc2

    def forward(self, x, self_bias, past_k, past_v, cross_k, cross_v, cross_bias):
        a = self.self_attn
        k, v = a.split(a.k(x)), a.split(a.v(x))
        if past_k is not None:
            k, v = torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2)
        x = self.norm1(x + a.attend(x, k, v, self_bias))
        x = self.norm2(x + self.cross.attend(x, cross_k, cross_v, cross_bias))
        return self.norm3(x + self.fc2(self.act(self.fc1(x)))), k, v


class Decoder(nn.Module):
    """Marian's decoder on new tokens, as one branch of the merged decoder.
    without past: (encoder_attention_mask, input_ids, encoder_hidden_states)
                  -> logits, then per layer self k, v and cross k, v (computed here);
    with past:    (encoder_attention_mask, input_ids, per layer past self k, v, cross k, v)
                  -> logits, then per layer self k, v (the past plus the new tokens).
    Positions start after the past; logits include final_logits_bias."""

    def __init__(self, model, with_past):
        super().__init__()
        dec = model.model.decoder
        self.embed, self.scale, self.with_past = dec.embed_tokens, dec.embed_scale, with_past
        self.register_buffer("positions", dec.embed_positions.weight.detach().clone())
        self.layers = nn.ModuleList(DecoderLayer(l) for l in dec.layers)
        self.lm_head = model.lm_head
        self.register_buffer("final_logits_bias", model.final_logits_bias.detach().clone())

    def forward(self, encoder_attention_mask, input_ids, *rest):
        L = len(self.layers)
        if self.with_past:
            past = [rest[4 * i: 4 * i + 4] for i in range(L)]
        else:
            c = [(l.cross.split(l.cross.k(rest[0])), l.cross.split(l.cross.v(rest[0]))) for l in self.layers]
            past = [(None, None, k, v) for k, v in c]
        start = past[0][0].shape[2] if self.with_past else 0
        new = input_ids.shape[1]
        x = self.embed(input_ids) * self.scale + self.positions[start: start + new]
        self_bias, cross_bias = causal_bias(new, start), key_bias(encoder_attention_mask)
        outputs = []
        for layer, (pk, pv, ck, cv) in zip(self.layers, past):
            x, k, v = layer(x, self_bias, pk, pv, ck, cv, cross_bias)
            outputs += [k, v] if self.with_past else [k, v, ck, cv]
        return (self.lm_head(x) + self.final_logits_bias, *outputs)


# ---------------------------------------------------------------- ONNX files

def kv_names(prefix, L, parts=("decoder", "encoder")):
    return [f"{prefix}.{i}.{part}.{kv}" for i in range(L) for part in parts for kv in ("key", "value")]


def kv_axes(names, self_axis):
    """The symbolic axes of cache tensors [batch_size, heads, length, head_dim]."""
    return {n: {0: "batch_size", 2: "encoder_sequence_length_out" if ".encoder." in n else self_axis} for n in names}


def export_graphs(model, onnx_dir, tmp):
    """encoder_model.onnx, and the two decoder branches as tmp/no_past.onnx, tmp/with_past.onnx."""
    c = model.config
    h, d_k, L = c.decoder_attention_heads, c.d_model // c.decoder_attention_heads, c.decoder_layers
    B, S, T, P = 2, 5, 2, 3  # no size 1 or 0, so the trace freezes none of them
    ids, mask = torch.full((B, S), 5), torch.ones(B, S, dtype=torch.int64)
    enc = {0: "batch_size", 1: "encoder_sequence_length"}
    dec = {0: "batch_size", 1: "decoder_sequence_length"}
    pasts, presents = kv_names("past_key_values", L), kv_names("present", L)
    with torch.no_grad():
        export(Encoder(model).eval(), (ids, mask), os.path.join(onnx_dir, "encoder_model.onnx"),
               ["input_ids", "attention_mask"], ["last_hidden_state"],
               {"input_ids": enc, "attention_mask": enc, "last_hidden_state": enc})
        export(Decoder(model, False).eval(), (mask, ids[:, :T], torch.zeros(B, S, c.d_model)),
               os.path.join(tmp, "no_past.onnx"), ["encoder_attention_mask", "input_ids", "encoder_hidden_states"],
               ["logits", *presents], {"encoder_attention_mask": enc, "input_ids": dec, "encoder_hidden_states": enc,
                                       "logits": dec, **kv_axes(presents, "decoder_sequence_length")})
        past_args = [torch.zeros(B, h, S if ".encoder." in n else P, d_k) for n in pasts]
        decoder_presents = kv_names("present", L, ("decoder",))
        export(Decoder(model, True).eval(), (mask, ids[:, :T], *past_args), os.path.join(tmp, "with_past.onnx"),
               ["encoder_attention_mask", "input_ids", *pasts], ["logits", *decoder_presents],
               {"encoder_attention_mask": enc, "input_ids": dec, "logits": dec,
                **kv_axes(pasts, "past_decoder_sequence_length"),
                **kv_axes(decoder_presents, "present_decoder_sequence_length")})


def branch(graph, tag, outer_inputs, initializers, extra_nodes, outputs):
    """graph's nodes as an If branch: its initializers moved to the outer graph (deduplicated by
    content into `initializers`), other values prefixed with tag/, outputs in the order given."""
    rename = {name: name for name in outer_inputs}
    for init in graph.initializer:
        array = numpy_helper.to_array(init)
        key = hashlib.sha1(array.tobytes() + str((array.dtype, array.shape)).encode()).hexdigest()
        if key not in initializers:
            name = init.name if all(t.name != init.name for t in initializers.values()) else f"{tag}/{init.name}"
            initializers[key] = numpy_helper.from_array(array, name)
        rename[init.name] = initializers[key].name
    fix = lambda n: n if n == "" else rename.get(n, f"{tag}/{n}")
    nodes = []
    for node in graph.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.name = f"{tag}/{node.name}"
        copy.input[:] = [fix(n) for n in node.input]
        copy.output[:] = [fix(n) for n in node.output]
        nodes.append(copy)
    nodes += extra_nodes
    values = [helper.make_tensor_value_info(f"{tag}/{name}", TensorProto.FLOAT, None) for name in outputs]
    return helper.make_graph(nodes, tag, [], values)


def merge_decoders(tmp, path, config):
    """decoder_model_merged.onnx: an If on use_cache_branch, else no_past, then with_past (whose
    present.*.encoder.* pass the past through)."""
    h, d_k, L = config.decoder_attention_heads, config.d_model // config.decoder_attention_heads, config.decoder_layers
    no_past, with_past = (onnx.load(os.path.join(tmp, f"{n}.onnx")) for n in ("no_past", "with_past"))
    pasts, presents = kv_names("past_key_values", L), kv_names("present", L)
    tensor = helper.make_tensor_value_info
    kv = lambda names, axis: [tensor(n, TensorProto.FLOAT, ["batch_size", h, a[2], d_k])
                              for n, a in kv_axes(names, axis).items()]
    inputs = [tensor("encoder_attention_mask", TensorProto.INT64, ["batch_size", "encoder_sequence_length"]),
              tensor("input_ids", TensorProto.INT64, ["batch_size", "decoder_sequence_length"]),
              tensor("encoder_hidden_states", TensorProto.FLOAT,
                     ["batch_size", "encoder_sequence_length", config.d_model]),
              *kv(pasts, "past_decoder_sequence_length")]
    inputs.append(tensor("use_cache_branch", TensorProto.BOOL, [1]))
    outer = [i.name for i in inputs]
    initializers = {}
    passthrough = [helper.make_node("Identity", [p], [f"with_past/{o}"], name=f"with_past/pass_{o}")
                   for p, o in zip(pasts, presents) if ".encoder." in p]
    else_branch = branch(no_past.graph, "no_past", outer, initializers, [], ["logits", *presents])
    then_branch = branch(with_past.graph, "with_past", outer, initializers, passthrough, ["logits", *presents])
    outputs = [tensor("logits", TensorProto.FLOAT, ["batch_size", "decoder_sequence_length", config.vocab_size])]
    outputs += kv(presents, "present_decoder_sequence_length")
    node = helper.make_node("If", ["use_cache_branch"], [o.name for o in outputs], name="optimum::if",
                            then_branch=then_branch, else_branch=else_branch)
    graph = helper.make_graph([node], "decoder_model_merged", inputs, outputs, list(initializers.values()))
    merged = helper.make_model(graph, opset_imports=no_past.opset_import, ir_version=no_past.ir_version)
    onnx.save(merged, path)
    onnx.checker.check_model(path)


def quantize_q8(onnx_dir):
    for name in ("encoder_model", "decoder_model_merged"):
        quantize_dynamic(os.path.join(onnx_dir, f"{name}.onnx"), os.path.join(onnx_dir, f"{name}_quantized.onnx"),
                         **Q8_OPTIONS)
        onnx.checker.check_model(os.path.join(onnx_dir, f"{name}_quantized.onnx"))
    ratio = (os.path.getsize(os.path.join(onnx_dir, "decoder_model_merged_quantized.onnx"))
             / os.path.getsize(os.path.join(onnx_dir, "decoder_model_merged.onnx")))
    assert ratio < 0.3, f"the quantized merged decoder is {ratio:.2f} of the float one: branches not quantized?"


# ---------------------------------------------------------------- running them

def sessions(onnx_dir, suffix):
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    return [ort.InferenceSession(os.path.join(onnx_dir, f"{n}{suffix}.onnx"), so, providers=["CPUExecutionProvider"])
            for n in ("encoder_model", "decoder_model_merged")]


def ort_steps(graphs, input_ids, attention_mask, start, next_tokens):
    """Encoder, then the merged decoder one token per step as transformers.js runs it (empty
    pasts and use_cache_branch false first, then the presents fed back). next_tokens(logits
    [B, V] of the steps so far) -> the next int64 [B] or None. Returns those logits."""
    encoder, decoder = graphs
    (hidden,) = encoder.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})
    feeds = {"encoder_attention_mask": attention_mask, "encoder_hidden_states": hidden,
             "input_ids": np.full((len(input_ids), 1), start, dtype=np.int64)}
    for meta in decoder.get_inputs():
        if meta.name.startswith("past_key_values."):
            shape = [len(input_ids) if d == "batch_size" else d if isinstance(d, int) else 0 for d in meta.shape]
            feeds[meta.name] = np.zeros(shape, dtype=np.float32)
    names, rows = [o.name for o in decoder.get_outputs()], []
    while True:
        feeds["use_cache_branch"] = np.array([bool(rows)])
        out = dict(zip(names, decoder.run(None, feeds)))
        rows.append(out["logits"][:, -1])
        feeds.update({n.replace("present", "past_key_values"): v for n, v in out.items() if n != "logits"})
        tokens = next_tokens(rows)
        if tokens is None:
            return rows
        feeds["input_ids"] = tokens.astype(np.int64)[:, None]


def greedy_chooser(gen, limit):
    """Greedy with generate()'s processors for these settings: bad_words_ids banned, eos forced at
    the last step, stop at eos. -> next_tokens for ort_steps, and the ids it chose."""
    ids = []

    def next_tokens(rows):
        scores = rows[-1][0].copy()
        scores[[w[0] for w in gen["bad_words_ids"]]] = -np.inf
        token = gen["forced_eos_token_id"] if len(rows) == limit else int(np.argmax(scores))
        ids.append(token)
        return None if token == gen["eos_token_id"] or len(rows) == limit else np.array([token])
    return next_tokens, ids


def generation_settings(model, max_new_tokens):
    g = model.generation_config
    gen = {k: getattr(g, k) for k in ("max_length", "bad_words_ids", "forced_eos_token_id", "eos_token_id",
                                      "decoder_start_token_id", "pad_token_id")}
    gen["num_beams"] = 1
    if max_new_tokens:
        gen["max_new_tokens"] = max_new_tokens
    return gen


@torch.no_grad()
def hf_greedy(model, input_ids, gen):
    """generate()'s ids without the start token, and the smallest top-1 minus top-2 score of a
    step (the processed scores; a forced step, with one finite score, does not count)."""
    kwargs = {"max_new_tokens": gen["max_new_tokens"]} if "max_new_tokens" in gen else {}
    out = model.generate(torch.tensor([input_ids]), num_beams=1, return_dict_in_generate=True,
                         output_scores=True, **kwargs)
    gaps = [float(t[0] - t[1]) for t in (s[0].topk(2).values for s in out.scores)]
    return out.sequences[0].tolist()[1:], round(min((g for g in gaps if math.isfinite(g)), default=math.inf), 6)


def check_logits(model, graphs, items, pad, start):
    """Teacher-forced on transformers' greedy ids, one padded batch of items: the largest
    |ort - torch| / max(1, |torch|) over all steps and rows."""
    S, T = max(len(it["input_ids"]) for it in items), max(len(it["greedy_ids"]) for it in items)
    ids = np.array([it["input_ids"] + [pad] * (S - len(it["input_ids"])) for it in items], dtype=np.int64)
    mask = (np.arange(S)[None, :] < np.array([[len(it["input_ids"])] for it in items])).astype(np.int64)
    forced = np.array([[start] + it["greedy_ids"] + [pad] * (T - len(it["greedy_ids"])) for it in items])
    with torch.no_grad():
        want = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
                     decoder_input_ids=torch.tensor(forced[:, :T])).logits.numpy()
    rows = ort_steps(graphs, ids, mask, start, lambda rows: forced[:, len(rows)] if len(rows) < T else None)
    got = np.stack(rows, axis=1)
    return float((np.abs(got - want) / np.maximum(1, np.abs(want))).max())


def check_onnx(model, onnx_dir, items, gen):
    """Float graphs: transformers' logits (batches of 1 and a padded 2) and greedy ids on every item;
    q8 graphs: how many greedy ids agree."""
    pad, start = gen["pad_token_id"], gen["decoder_start_token_id"]
    limit = gen.get("max_new_tokens", gen["max_length"] - 1)
    float_graphs = sessions(onnx_dir, "")
    by_length = sorted(items[:8], key=lambda it: len(it["input_ids"]))
    diffs = [check_logits(model, float_graphs, [it], pad, start) for it in items[:3]]
    diffs.append(check_logits(model, float_graphs, [by_length[-1], by_length[0]], pad, start))
    print(f"  onnxruntime vs transformers, teacher-forced: max |dlogit|/max(1,|logit|) batch 1 "
          f"{max(diffs[:-1]):.2e}, padded batch 2 {diffs[-1]:.2e}")
    assert max(diffs) < ATOL, "onnxruntime's float graphs disagree with transformers"
    same = {}
    for suffix in ("", "_quantized"):
        graphs = float_graphs if suffix == "" else sessions(onnx_dir, suffix)
        same[suffix] = 0
        for it in items:
            next_tokens, ids = greedy_chooser(gen, limit)
            ort_steps(graphs, np.array([it["input_ids"]]), np.ones((1, len(it["input_ids"])), dtype=np.int64),
                      start, next_tokens)
            same[suffix] += ids == it["greedy_ids"]
            if suffix == "":
                assert ids == it["greedy_ids"], f"onnxruntime's greedy ids differ on {it['en']!r}: {ids} vs {it['greedy_ids']}"
    print(f"  greedy ids = transformers': float graphs {same['']}/{len(items)}, q8 graphs {same['_quantized']}/{len(items)}")
    return {"max_rel_logit_diff_batch1": max(diffs[:-1]), "max_rel_logit_diff_padded_batch2": diffs[-1],
            "float_greedy_identical": same[""], "q8_greedy_identical": same["_quantized"]}


# ---------------------------------------------------------------- per model

def build(name, out):
    os.makedirs(os.path.join(out, "onnx"), exist_ok=True)
    with open(os.path.join(DEMO, "heldout.json")) as f:
        heldout = json.load(f)["items"]
    texts = [it["en"] for it in heldout]
    model = demo_de(out) if name == "demo-de" else opus_shape(out)
    if name == "opus-shape":
        check_opus_tokenizer(out, texts)
    write_tokenizer_json(out)
    tokenizer = check_tokenizer_json(out, texts)

    gen = generation_settings(model, OPUS_MAX_NEW_TOKENS if name == "opus-shape" else None)
    items = []
    for it in heldout[:REFERENCE_ITEMS]:
        input_ids = tokenizer(it["en"])["input_ids"]
        greedy_ids, margin = hf_greedy(model, input_ids, gen)
        items.append({"en": it["en"], "input_ids": input_ids, "greedy_ids": greedy_ids, "greedy_margin": margin})
    if name == "demo-de":
        same = sum(a["greedy_ids"] == b["greedy_ids"] for a, b in zip(items, heldout))
        print(f"  transformers' greedy ids = heldout.json's for {same}/{len(items)} items")
    print(f"  smallest greedy margin {min(it['greedy_margin'] for it in items):.2e}, "
          f"distinct greedy ids {len({t for it in items for t in it['greedy_ids']})}")

    onnx_dir = os.path.join(out, "onnx")
    with tempfile.TemporaryDirectory() as tmp:
        export_graphs(model, onnx_dir, tmp)
        merge_decoders(tmp, os.path.join(onnx_dir, "decoder_model_merged.onnx"), model.config)
    quantize_q8(onnx_dir)
    checks = check_onnx(model, onnx_dir, items, gen)

    description = ("the first 100 held-out pairs of models/en-de-messages/heldout.json: MarianTokenizer's "
                   "input_ids and transformers' (float32, torch) greedy generate() ids with the generation "
                   "settings below, without the leading decoder_start_token_id (the final </s> kept); "
                   "greedy_margin: the smallest top-1 minus top-2 processed score of a greedy step; "
                   "onnxruntime: what this folder's ONNX graphs gave (CPU, one thread)")
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump({"model": name, "description": description, "generation": gen, "onnxruntime": checks,
                   "items": items}, f, ensure_ascii=False)
    for file in sorted(os.listdir(onnx_dir)):
        print(f"  {os.path.join(onnx_dir, file)}  {os.path.getsize(os.path.join(onnx_dir, file)) / 2**20:.1f} MiB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "models", "transformersjs"))
    parser.add_argument("--models", default="demo-de,opus-shape")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)  # quantize_dynamic's pre-processing advice
    transformers.logging.set_verbosity_error()  # generate()'s note that max_new_tokens beats max_length
    warnings.filterwarnings("ignore", message="Recommended: pip install sacremoses")  # unused by _tokenize
    for name in args.models.split(","):
        assert name in ("demo-de", "opus-shape"), f"unknown model {name}"
        print(f"[{name}]")
        build(name, os.path.join(args.out, name))


if __name__ == "__main__":
    main()
