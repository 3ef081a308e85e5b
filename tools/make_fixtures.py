#!/usr/bin/python3
"""PyTorch reference fixtures for wasmformer's model tests.

Builds small random-weight models laid out exactly as in /work/shared/spec/model-format.md
(the PyTorch translation tutorial's Seq2SeqTransformer around torch.nn.Transformer itself) and
writes, per case, test/fixtures/<case>/{config.json, model.safetensors, expected.json}.

Usage (Debian: apt-get install python3-torch python3-numpy):
  /usr/bin/python3 tools/make_fixtures.py            regenerate every case
  /usr/bin/python3 tools/make_fixtures.py --check    recompute every case, compare with the files
  options: --case NAME (repeatable) limits to some cases; --out DIR (default test/fixtures)

Everything is seeded and single-threaded, so a run reproduces the committed bytes exactly.
Each case is also self-checked while it is built: the hand-written safetensors is parsed back
and compared with the state dict, greedy ids are recomputed by a second implementation
(encoder once, then decoder per step) and in float64, and every greedy step keeps a top-1 /
top-2 logit margin of at least MIN_MARGIN so the asserted ids are robust to rounding.

expected.json:
  forward: [{src, tgt, logits}]   tgt is the teacher-forced decoder input (starts with bos_id);
                                  logits is row-major [len(tgt) * tgt_vocab_size], float32 values
                                  written as the shortest decimal that rounds back to the same
                                  float32 (parse as a double, then Math.fround).
  greedy:  [{src, max_new_tokens, ids, stopped_by_eos, min_margin}]  ids as the spec's
                                  "Greedy decoding" says (no leading bos, no final eos).
  min_greedy_margin, float64_max_abs_logit_diff (how far float32 torch is from float64 torch),
  eos_boosts (how often eos_logit_boost raised eos's logit so that some greedy run stops).
"""

import argparse
import copy
import json
import math
import struct
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

MIN_MARGIN = 1e-2  # smallest top-1 minus top-2 logit accepted at any greedy step
REPO = Path(__file__).resolve().parent.parent

CONFIG_FIELDS = ('d_model', 'nhead', 'num_encoder_layers', 'num_decoder_layers', 'dim_feedforward',
                 'activation', 'norm_first', 'layer_norm_eps', 'final_norm', 'scale_embedding',
                 'src_vocab_size', 'tgt_vocab_size', 'max_len', 'pad_id', 'bos_id', 'eos_id')


# ---------------------------------------------------------------------------------------------
# The cases. Besides the config fields, each case says:
#   seed           torch and numpy seed of everything in the case
#   positions      'none' (computed sinusoid), or (rank, rows, kind) of the stored buffer with
#                  rank 3 = [P, 1, d_model] (the tutorial's), rank 2 = [P, d_model], and kind
#                  'random' (so a loader that ignores the buffer fails) or 'sinusoid' (tutorial)
#   generator      'linear' or 'tied'; generator_bias: whether generator.bias exists
#   forward        (src_len, tgt_len) of the teacher-forced pairs
#   greedy         (src_len, max_new_tokens, want) with want 'eos' (must stop on eos after at
#                  least 3 ids, before max_new_tokens) or 'length' (runs to max_new_tokens)
#   padded         the padding case's inputs instead of forward / greedy, with sources given
#                  as patterns ('x' = a random non-pad token, 'p' = pad_id)
#   extra_tensors  {name: shape} of float32 tensors that are not in the spec (must be ignored)
#   extra_config   config fields that are not in the spec (must be ignored)
#   reverse_data   lay tensor bytes out in the reverse of the header's order
# ---------------------------------------------------------------------------------------------

CASES = [
    dict(
        name='post_ln_relu_stored_pos',
        about='The paper\'s post-LN layers with ReLU, final encoder/decoder norms, stored '
              '[P, 1, d_model] positions (random values, P > max_len), separate generator with '
              'bias, scaled embeddings, 2+2 layers, the tutorial\'s special ids.',
        d_model=16, nhead=4, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=32,
        activation='relu', norm_first=False, layer_norm_eps=1e-5, final_norm=True,
        scale_embedding=True, src_vocab_size=23, tgt_vocab_size=19, max_len=16,
        pad_id=1, bos_id=2, eos_id=3,
        seed=101, positions=(3, 20, 'random'), generator='linear', generator_bias=True,
        forward=[(5, 4), (1, 1), (16, 16)],
        greedy=[(6, 15, 'eos'), (9, 15, 'length'), (3, 4, 'length')],
    ),
    dict(
        name='pre_ln_gelu_computed_pos',
        about='Pre-LN layers with exact GELU, final norms, no position buffer (the sinusoid is '
              'computed), 3 encoder + 2 decoder layers, layer_norm_eps 1e-6.',
        d_model=24, nhead=4, num_encoder_layers=3, num_decoder_layers=2, dim_feedforward=40,
        activation='gelu', norm_first=True, layer_norm_eps=1e-6, final_norm=True,
        scale_embedding=True, src_vocab_size=37, tgt_vocab_size=41, max_len=20,
        pad_id=0, bos_id=1, eos_id=2,
        seed=202, positions='none', generator='linear', generator_bias=True,
        forward=[(7, 6), (2, 9), (20, 20)],
        greedy=[(8, 19, 'eos'), (11, 19, 'length')],
    ),
    dict(
        name='no_final_norm',
        about='Post-LN without transformer.encoder.norm / transformer.decoder.norm (final_norm '
              'false), 2 encoder + 1 decoder layers, stored positions in the rank-2 [P, d_model] '
              'form with P == max_len, generator weight without bias.',
        d_model=16, nhead=2, num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=24,
        activation='relu', norm_first=False, layer_norm_eps=1e-5, final_norm=False,
        scale_embedding=True, src_vocab_size=17, tgt_vocab_size=13, max_len=16,
        pad_id=0, bos_id=2, eos_id=1,
        seed=303, positions=(2, 16, 'random'), generator='linear', generator_bias=False,
        forward=[(4, 5), (16, 16)],
        greedy=[(5, 15, 'eos'), (7, 15, 'length')],
    ),
    dict(
        name='tied_generator_no_bias',
        about='Generator tied to tgt_tok_emb (no generator.* tensors at all) without bias, '
              'scale_embedding false, post-LN GELU, computed positions, 5 heads.',
        d_model=20, nhead=5, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=36,
        activation='gelu', norm_first=False, layer_norm_eps=1e-5, final_norm=True,
        scale_embedding=False, src_vocab_size=27, tgt_vocab_size=23, max_len=18,
        pad_id=3, bos_id=0, eos_id=5,
        seed=404, positions='none', generator='tied', generator_bias=False,
        forward=[(6, 7), (18, 18)],
        greedy=[(6, 17, 'eos'), (10, 17, 'length')],
    ),
    dict(
        name='source_padding',
        about='Sources that contain pad_id (trailing pads, and one pad in the middle): those '
              'positions are masked out of encoder self-attention and of cross-attention '
              '(src_key_padding_mask = memory_key_padding_mask = src == pad_id).',
        d_model=16, nhead=4, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=32,
        activation='relu', norm_first=False, layer_norm_eps=1e-5, final_norm=True,
        scale_embedding=True, src_vocab_size=19, tgt_vocab_size=17, max_len=16,
        pad_id=1, bos_id=2, eos_id=3,
        seed=505, positions=(3, 16, 'sinusoid'), generator='linear', generator_bias=True,
        padded=dict(forward=[('xxxxpp', 5), ('xxxpppppp', 3), ('xxpxxx', 6), ('xxxxxxxxxxxxxxpp', 16)],
                    greedy=[('xxxxxppp', 15, 'eos'), ('xxpxxxx', 15, 'length'), ('xxxxxxppppp', 15, 'length')]),
        forward=[], greedy=[],
    ),
    dict(
        name='odd_sizes_3_heads',
        about='Nothing a multiple of 4: d_model 21 (odd, so the computed sinusoid ends on a sin '
              'column), 3 heads of width 7, dim_feedforward 37, vocabularies 29 / 31, max_len 17; '
              'pre-LN ReLU, computed positions.',
        d_model=21, nhead=3, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=37,
        activation='relu', norm_first=True, layer_norm_eps=1e-5, final_norm=True,
        scale_embedding=True, src_vocab_size=29, tgt_vocab_size=31, max_len=17,
        pad_id=0, bos_id=1, eos_id=2,
        seed=606, positions='none', generator='linear', generator_bias=True,
        forward=[(3, 5), (17, 17), (1, 2)],
        greedy=[(9, 16, 'eos'), (13, 16, 'length')],
    ),
    dict(
        name='tied_generator_bias_extra_tensor',
        about='Generator tied to tgt_tok_emb WITH generator.bias (generator.weight absent), plus '
              'tensors the spec does not name (to be ignored), extra config fields (to be '
              'ignored), and tensor bytes laid out in the reverse of the header order.',
        d_model=12, nhead=3, num_encoder_layers=1, num_decoder_layers=2, dim_feedforward=20,
        activation='gelu', norm_first=False, layer_norm_eps=1e-5, final_norm=True,
        scale_embedding=True, src_vocab_size=11, tgt_vocab_size=14, max_len=16,
        pad_id=0, bos_id=1, eos_id=2,
        seed=707, positions=(3, 21, 'sinusoid'), generator='tied', generator_bias=True,
        extra_tensors={'extra.unused_buffer': (7, 3), 'positional_encoding.dropout_scale': (1,)},
        extra_config={'dropout': 0.1, 'emb_size': 12, 'note': 'fields not in the spec are ignored'},
        reverse_data=True,
        forward=[(5, 6), (16, 16)],
        greedy=[(4, 15, 'eos'), (8, 15, 'length')],
    ),
    dict(
        name='deep_4x4_max_len',
        about='A deeper stack, 4 encoder + 4 decoder layers, d_model 32, 4 heads, post-LN ReLU, '
              'the tutorial\'s sinusoid buffer [P, 1, d_model] with P > max_len; sources and '
              'targets of max_len tokens, greedy with max_new_tokens = max_len (the spec default, '
              'so the last step feeds exactly max_len decoder positions).',
        d_model=32, nhead=4, num_encoder_layers=4, num_decoder_layers=4, dim_feedforward=64,
        activation='relu', norm_first=False, layer_norm_eps=1e-5, final_norm=True,
        scale_embedding=True, src_vocab_size=61, tgt_vocab_size=53, max_len=32,
        pad_id=1, bos_id=2, eos_id=3,
        seed=808, positions=(3, 40, 'sinusoid'), generator='linear', generator_bias=True,
        forward=[(32, 32), (11, 7)],
        greedy=[(32, 32, 'length'), (32, 31, 'eos'), (20, 31, 'length')],
    ),
]


# ---------------------------------------------------------------------------------------------
# The model: the tutorial's Seq2SeqTransformer, sequence-first like the tutorial (batch_first
# False, which also keeps torch off its nested-tensor fast path), batch size 1.
# ---------------------------------------------------------------------------------------------

def sinusoid(rows, d_model):
    """The paper's PE [rows, d_model]: sin on even columns, cos on odd ones, float64 then float32."""
    pos = np.arange(rows, dtype=np.float64)[:, None]
    col = np.arange(d_model)
    angle = pos / np.power(10000.0, (col - col % 2) / d_model)  # 2i / d_model for columns 2i, 2i+1
    pe = np.where(col % 2 == 0, np.sin(angle), np.cos(angle))
    return torch.from_numpy(pe.astype(np.float32))


class TokenEmbedding(nn.Module):
    def __init__(self, vocab, d_model, scale):
        super().__init__()
        self.embedding = nn.Embedding(vocab, d_model)
        self.scale = math.sqrt(d_model) if scale else 1.0

    def forward(self, ids):  # [S, 1] -> [S, 1, d_model]
        return self.embedding(ids) * self.scale


class PositionalEncoding(nn.Module):
    """Stored buffer `pos_embedding` ([P, 1, d] or [P, d]) or a computed, unsaved sinusoid."""

    def __init__(self, table, stored):
        super().__init__()
        self.register_buffer('pos_embedding', table, persistent=stored)

    def forward(self, x):  # x [S, 1, d]
        pe = self.pos_embedding[:x.size(0)]
        return x + (pe if pe.dim() == 3 else pe.unsqueeze(1))


class TiedGenerator(nn.Module):
    """The tgt embedding matrix as output projection; `bias` is generator.bias when present."""

    def __init__(self, vocab, bias):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(vocab)) if bias else None

    def forward(self, x, weight):
        return F.linear(x, weight, self.bias)


def build_transformer(c):
    kw = dict(d_model=c['d_model'], nhead=c['nhead'], dim_feedforward=c['dim_feedforward'],
              dropout=0.0, activation=c['activation'], layer_norm_eps=c['layer_norm_eps'],
              batch_first=False, norm_first=c['norm_first'])
    if c['final_norm']:
        return nn.Transformer(num_encoder_layers=c['num_encoder_layers'],
                              num_decoder_layers=c['num_decoder_layers'], **kw)
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(**kw), c['num_encoder_layers'],
                                    norm=None, enable_nested_tensor=False)
    decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(**kw), c['num_decoder_layers'], norm=None)
    return nn.Transformer(custom_encoder=encoder, custom_decoder=decoder, **kw)


class Seq2SeqTransformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        d = c['d_model']
        self.transformer = build_transformer(c)
        self.src_tok_emb = TokenEmbedding(c['src_vocab_size'], d, c['scale_embedding'])
        self.tgt_tok_emb = TokenEmbedding(c['tgt_vocab_size'], d, c['scale_embedding'])
        if c['positions'] == 'none':
            table, stored = sinusoid(c['max_len'], d), False
        else:
            rank, rows, kind = c['positions']
            table = sinusoid(rows, d) if kind == 'sinusoid' else torch.randn(rows, d) * 0.5
            table, stored = (table.unsqueeze(1) if rank == 3 else table), True
        self.positional_encoding = PositionalEncoding(table, stored)
        self.tied = c['generator'] == 'tied'
        if self.tied:
            self.generator = TiedGenerator(c['tgt_vocab_size'], c['generator_bias'])
        else:
            self.generator = nn.Linear(d, c['tgt_vocab_size'], bias=c['generator_bias'])

    def project(self, x):
        if self.tied:
            return self.generator(x, self.tgt_tok_emb.embedding.weight)
        return self.generator(x)

    def embed_src(self, src):
        return self.positional_encoding(self.src_tok_emb(src))

    def embed_tgt(self, tgt):
        return self.positional_encoding(self.tgt_tok_emb(tgt))

    def forward(self, src, tgt, use_pad_mask=True):
        """src [S, 1], tgt [T, 1] (int64) -> logits [T, tgt_vocab]."""
        pad = (src == self.c['pad_id']).T if use_pad_mask else None  # [1, S], True = masked
        tgt_mask = nn.Transformer.generate_square_subsequent_mask(tgt.size(0)).to(self.dtype())
        out = self.transformer(self.embed_src(src), self.embed_tgt(tgt), tgt_mask=tgt_mask,
                               src_key_padding_mask=pad, memory_key_padding_mask=pad)
        return self.project(out)[:, 0]

    def dtype(self):
        return self.tgt_tok_emb.embedding.weight.dtype


def randomize(model, c):
    """Non-degenerate random weights (all still a valid model): O(1) activations, non-zero
    biases, and greedy runs that do not collapse into repeating one token."""
    d = c['d_model']
    if not c['scale_embedding']:
        emb_std = 1.0
    elif c['generator'] == 'tied':
        emb_std = d ** -0.25  # the tied generator uses the unscaled matrix: keep logits O(1)
    else:
        emb_std = d ** -0.5  # times sqrt(d_model): O(1) entries, like the positions
    for name, p in model.named_parameters():
        if name.endswith('embedding.weight'):
            nn.init.normal_(p, std=emb_std)
        elif name.endswith('in_proj_weight'):
            p.mul_(2.0)  # sharper attention, so masks and positions change the result
        elif name.endswith('out_proj.weight') or name.endswith('linear2.weight'):
            p.mul_(0.5)  # sublayers add less: the residual keeps the token, logits depend on tgt
        elif name == 'generator.weight':
            p.mul_(3.0)  # logits spread wider than the biases
        elif name.endswith('bias'):
            nn.init.uniform_(p, -0.3, 0.3)
        elif '.norm' in name:  # LayerNorm gains of either sign: with a tied generator, all
            # positive gains make every step predict its own input token again
            nn.init.uniform_(p, 0.7, 1.3)
            p.mul_(torch.randint(0, 2, p.shape) * 2 - 1)


def build_model(c):
    torch.manual_seed(c['seed'])
    model = Seq2SeqTransformer(c)
    with torch.no_grad():
        randomize(model, c)
    return model.eval()


# ---------------------------------------------------------------------------------------------
# Forward passes and greedy decoding
# ---------------------------------------------------------------------------------------------

def column(ids):
    return torch.tensor(ids, dtype=torch.int64).unsqueeze(1)


def top_two(row):
    """(argmax with the lowest id winning ties, top-1 minus top-2 value)."""
    row = row.detach().double().numpy()
    best = int(np.argmax(row))  # numpy returns the first maximum
    others = np.delete(row, best)
    return best, float(row[best] - others.max())


def finish(ys, eos):
    """The spec's result: drop the leading bos and a final eos."""
    ids = ys[1:]
    stopped = bool(ids) and ids[-1] == eos
    return (ids[:-1] if stopped else ids), stopped


def greedy(next_logits, c, max_new):
    """The spec's greedy loop; next_logits(ys) gives the logits of ys's last position.
    Returns (ids, stopped_by_eos, smallest top-1 minus top-2 margin over the steps)."""
    ys, margin = [c['bos_id']], math.inf
    for _ in range(max_new):
        token, m = top_two(next_logits(ys))
        ys.append(token)
        margin = min(margin, m)
        if token == c['eos_id']:
            break
    ids, stopped = finish(ys, c['eos_id'])
    return ids, stopped, margin


def full_recompute(model, src):
    """The reference: nn.Transformer over the whole prefix at every step."""
    return lambda ys: model(column(src), column(ys))[-1]


def split_stacks(model, src):
    """Second implementation: transformer.encoder once, then transformer.decoder per step
    (with a boolean causal mask where the reference uses the float -inf one)."""
    c, t = model.c, model.transformer
    s = column(src)
    pad = (s == c['pad_id']).T
    memory = t.encoder(model.embed_src(s), src_key_padding_mask=pad)

    def next_logits(ys):
        n = len(ys)
        causal = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
        out = t.decoder(model.embed_tgt(column(ys)), memory, tgt_mask=causal,
                        memory_key_padding_mask=pad)
        return model.project(out[-1, 0])
    return next_logits


# ---------------------------------------------------------------------------------------------
# Inputs: random ids (pad_id excluded unless a pattern asks for it), seeded per case
# ---------------------------------------------------------------------------------------------

def random_ids(rng, n, vocab, pad):
    choices = [i for i in range(vocab) if i != pad]
    return [int(x) for x in rng.choice(choices, size=n)]


def from_pattern(rng, pattern, vocab, pad):
    return [pad if ch == 'p' else random_ids(rng, 1, vocab, pad)[0] for ch in pattern]


def pick_greedy(model, make_src, max_new, want, tries=100):
    """The first random source whose greedy run has the wanted ending, a safe margin at every
    step and varied ids. Searches with the faster split implementation; build_case re-runs the
    reference on the pick."""
    c = model.c
    for _ in range(tries):
        src = make_src()
        ids, stopped, margin = greedy(split_stacks(model, src), c, max_new)
        if want == 'eos':  # stopped with at least three ids and a step of the budget unused
            ended_as_wanted = stopped and 3 <= len(ids) < max_new - 1
        else:
            ended_as_wanted = not stopped
        varied = len(set(ids)) >= 3  # not one token over and over
        # twice the margin the reference must keep: the two implementations round differently
        if margin >= 2 * MIN_MARGIN and ended_as_wanted and varied:
            return src
    return None


def eos_logit_boost(model, c, step):
    """Make eos likelier (a still-valid model) when random weights never stop: raise its bias or,
    with no bias to raise, lengthen its embedding or generator row."""
    with torch.no_grad():
        if c['generator_bias']:
            model.generator.bias[c['eos_id']] += 0.25 * step
        elif c['generator'] == 'tied':
            model.tgt_tok_emb.embedding.weight[c['eos_id']] *= 1.1
        else:
            model.generator.weight[c['eos_id']] *= 1.1


def pick_all_greedy(model, c, specs):
    """A source per (make_src, max_new_tokens, want) spec. When no source stops on eos, makes
    eos likelier and starts over (earlier picks were made with other weights).
    Returns ([(src, max_new_tokens)], number of boosts)."""
    for boosts in range(21):
        picks = []
        for make_src, max_new, want in specs:
            src = pick_greedy(model, make_src, max_new, want)
            if src is None and want != 'eos':
                raise SystemExit(f"{c['name']}: no source gives a safe greedy run ending by {want}")
            if src is None:
                break
            picks.append((src, max_new))
        if len(picks) == len(specs):
            return picks, boosts
        eos_logit_boost(model, c, boosts + 1)
    raise SystemExit(f"{c['name']}: no greedy run stops on eos")


def make_inputs(model, c):
    """Teacher-forced (src, tgt) pairs and greedy (src, max_new_tokens) picks for the case."""
    rng = np.random.default_rng(c['seed'])
    sv, tv, pad = c['src_vocab_size'], c['tgt_vocab_size'], c['pad_id']

    def tgt_of(n):
        return [c['bos_id']] + random_ids(rng, n - 1, tv, pad)

    padded = c.get('padded')
    if padded:
        forward = [(from_pattern(rng, p, sv, pad), tgt_of(n)) for p, n in padded['forward']]
        specs = [(lambda p=p: from_pattern(rng, p, sv, pad), n, w) for p, n, w in padded['greedy']]
    else:
        forward = [(random_ids(rng, s, sv, pad), tgt_of(t)) for s, t in c['forward']]
        specs = [(lambda s=s: random_ids(rng, s, sv, pad), n, w) for s, n, w in c['greedy']]
    picks, boosts = pick_all_greedy(model, c, specs)
    return forward, picks, boosts


def greedy_record(model, model64, src, max_new):
    """The reference greedy run (full recompute, float32), checked against the split
    implementation and against float64."""
    c = model.c
    ids, stopped, margin = greedy(full_recompute(model, src), c, max_new)
    assert margin >= MIN_MARGIN, f"{c['name']}: margin {margin} at src {src}"
    assert greedy(split_stacks(model, src), c, max_new)[0] == ids, 'split greedy differs'
    assert greedy(full_recompute(model64, src), c, max_new)[0] == ids, 'float64 greedy differs'
    assert len(src) <= c['max_len'] and max_new <= c['max_len']
    return dict(src=src, max_new_tokens=max_new, ids=ids, stopped_by_eos=stopped, min_margin=margin)


# ---------------------------------------------------------------------------------------------
# safetensors, by hand
# ---------------------------------------------------------------------------------------------

def safetensors_bytes(tensors, reverse_data=False):
    """tensors: {name: float32 ndarray}. Header keys sorted; data contiguous with no holes."""
    names = sorted(tensors)
    data_order = names[::-1] if reverse_data else names
    offsets, chunks, at = {}, [], 0
    for name in data_order:
        raw = np.ascontiguousarray(tensors[name], dtype='<f4').tobytes()
        offsets[name] = [at, at + len(raw)]
        chunks.append(raw)
        at += len(raw)
    header = {'__metadata__': {'format': 'pt'}}
    for name in names:
        header[name] = {'dtype': 'F32', 'shape': list(tensors[name].shape), 'data_offsets': offsets[name]}
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    return struct.pack('<Q', len(text)) + text + b''.join(chunks)


def parse_safetensors(blob):
    """Strict reader (the checks the spec asks of the loader) returning {name: ndarray}."""
    (n,) = struct.unpack('<Q', blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    header.pop('__metadata__', None)
    spans = sorted((v['data_offsets'][0], v['data_offsets'][1], k) for k, v in header.items())
    at = 0
    for start, end, name in spans:
        assert start == at, f'{name}: hole or overlap at {at}'
        at = end
    assert at == len(data), 'bytes that no tensor claims'
    out = {}
    for name, v in header.items():
        assert v['dtype'] == 'F32', name
        start, end = v['data_offsets']
        assert end - start == 4 * int(np.prod(v['shape'], dtype=np.int64)), name
        out[name] = np.frombuffer(data[start:end], dtype='<f4').reshape(v['shape'])
    return out


def state_tensors(model, c):
    """The state dict as float32 arrays, plus the case's unrelated extra tensors."""
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    rng = np.random.default_rng(c['seed'] + 1)
    for name, shape in c.get('extra_tensors', {}).items():
        sd[name] = rng.standard_normal(shape).astype(np.float32)
    return sd


def expected_names(c):
    """Every tensor the spec names for this config: the state dict must hold exactly these."""
    names = ['src_tok_emb.embedding.weight', 'tgt_tok_emb.embedding.weight']
    if c['positions'] != 'none':
        names.append('positional_encoding.pos_embedding')
    attn = ['in_proj_weight', 'in_proj_bias', 'out_proj.weight', 'out_proj.bias']
    ffn = ['linear1.weight', 'linear1.bias', 'linear2.weight', 'linear2.bias']
    for i in range(c['num_encoder_layers']):
        p = f'transformer.encoder.layers.{i}.'
        names += [p + 'self_attn.' + a for a in attn] + [p + f for f in ffn]
        names += [p + f'norm{k}.{w}' for k in (1, 2) for w in ('weight', 'bias')]
    for i in range(c['num_decoder_layers']):
        p = f'transformer.decoder.layers.{i}.'
        names += [p + m + '.' + a for m in ('self_attn', 'multihead_attn') for a in attn] + [p + f for f in ffn]
        names += [p + f'norm{k}.{w}' for k in (1, 2, 3) for w in ('weight', 'bias')]
    if c['final_norm']:
        names += [f'transformer.{s}.norm.{w}' for s in ('encoder', 'decoder') for w in ('weight', 'bias')]
    if c['generator'] == 'linear':
        names.append('generator.weight')
    if c['generator_bias']:
        names.append('generator.bias')
    return set(names)


# ---------------------------------------------------------------------------------------------
# JSON with exact float32 values, compact number arrays
# ---------------------------------------------------------------------------------------------

def f32_number(v):
    """The shortest decimal that rounds back to float32 v, as a Python float for json."""
    v = np.float32(v)
    x = float(str(v))
    if np.float32(x) != v:  # double rounding through float64 did not return v: write it exactly
        x = float(v)
    return x


def to_json(o, indent=''):
    """Indented objects, but each list of numbers on one line (the logits are long)."""
    inner = indent + '  '
    if isinstance(o, dict):
        items = [f'{inner}{json.dumps(k)}: {to_json(v, inner)}' for k, v in o.items()]
        return '{\n' + ',\n'.join(items) + '\n' + indent + '}'
    if isinstance(o, list) and o and isinstance(o[0], dict):
        return '[\n' + ',\n'.join(inner + to_json(v, inner) for v in o) + '\n' + indent + ']'
    return json.dumps(o, separators=(',', ':'))


# ---------------------------------------------------------------------------------------------
# One case
# ---------------------------------------------------------------------------------------------

def close(a, b, tol):
    return float((a - b).abs().max()) <= tol


def self_checks(model, c, forward):
    """Facts the fixture relies on: causality, and (padding case) that the mask matters and
    that trailing pads change nothing."""
    for src, tgt in forward:
        full = model(column(src), column(tgt))
        k = max(1, len(tgt) // 2)
        assert close(model(column(src), column(tgt[:k])), full[:k], 1e-5), 'not causal'
        if c['pad_id'] in src:
            unmasked = model(column(src), column(tgt), use_pad_mask=False)
            assert not close(unmasked, full, 1e-2), f'{c["name"]}: the pad mask changes nothing'
            stripped = list(src)
            while stripped[-1] == c['pad_id']:
                stripped.pop()
            if c['pad_id'] not in stripped:
                assert close(model(column(stripped), column(tgt)), full, 1e-5), 'trailing pads leak'


def build_case(c):
    model = build_model(c)
    with torch.no_grad():
        forward, picks, boosts = make_inputs(model, c)
        self_checks(model, c, forward)
        model64 = copy.deepcopy(model).double()
        diff64 = 0.0
        rows = []
        for src, tgt in forward:
            logits = model(column(src), column(tgt))
            diff64 = max(diff64, float((model64(column(src), column(tgt)) - logits.double()).abs().max()))
            rows.append(dict(src=src, tgt=tgt, logits=[f32_number(v) for v in logits.reshape(-1).numpy()]))
        runs = [greedy_record(model, model64, src, max_new) for src, max_new in picks]
        for src, tgt in forward:
            assert len(src) <= c['max_len'] and len(tgt) <= c['max_len'] and tgt[0] == c['bos_id']

    tensors = state_tensors(model, c)
    spec_names = expected_names(c)
    assert set(model.state_dict()) == spec_names, set(model.state_dict()) ^ spec_names
    blob = safetensors_bytes(tensors, c.get('reverse_data', False))
    back = parse_safetensors(blob)
    assert set(back) == set(tensors)
    for name, arr in tensors.items():
        assert back[name].shape == arr.shape and np.array_equal(back[name], arr), name

    config = {k: c[k] for k in CONFIG_FIELDS}
    config.update(c.get('extra_config', {}))
    expected = dict(
        case=c['name'], about=c['about'],
        forward=rows, greedy=runs,
        min_greedy_margin=min(g['min_margin'] for g in runs),
        float64_max_abs_logit_diff=diff64,
        eos_boosts=boosts,
        torch_version=torch.__version__.split('+')[0],
    )
    return {
        'config.json': (json.dumps(config, indent=2) + '\n').encode(),
        'model.safetensors': blob,
        'expected.json': (to_json(expected) + '\n').encode(),
    }


def describe_difference(folder, files):
    """For --check: which files differ and, for expected.json, by how much."""
    bad = [n for n, b in files.items() if not (folder / n).exists() or (folder / n).read_bytes() != b]
    if 'expected.json' in bad and (folder / 'expected.json').exists():
        old, new = json.loads((folder / 'expected.json').read_bytes()), json.loads(files['expected.json'])
        pairs = zip(old['forward'], new['forward'])
        worst = max((abs(a - b) for o, n in pairs for a, b in zip(o['logits'], n['logits'])), default=0.0)
        same_ids = [g['ids'] for g in old['greedy']] == [g['ids'] for g in new['greedy']]
        bad[bad.index('expected.json')] += f' (max logit diff {worst:.3g}, greedy ids {"same" if same_ids else "DIFFER"})'
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--check', action='store_true', help='recompute and compare with the files')
    ap.add_argument('--case', action='append', help='only this case (repeatable)')
    ap.add_argument('--out', type=Path, default=REPO / 'test' / 'fixtures', help='fixtures folder')
    args = ap.parse_args()
    torch.set_num_threads(1)
    cases = [c for c in CASES if not args.case or c['name'] in args.case]
    if args.case and len(cases) != len(args.case):
        raise SystemExit(f'unknown case among {args.case}; cases: {[c["name"] for c in CASES]}')
    failed = False
    for c in cases:
        files = build_case(c)
        folder = args.out / c['name']
        exp = json.loads(files['expected.json'])
        summary = (f"{c['name']}: greedy ids lengths {[len(g['ids']) for g in exp['greedy']]}, eos "
                   f"{[g['stopped_by_eos'] for g in exp['greedy']]}, min margin "
                   f"{exp['min_greedy_margin']:.4g}, f64 diff {exp['float64_max_abs_logit_diff']:.2g}, "
                   f"{sum(len(b) for b in files.values())} bytes")
        if args.check:
            bad = describe_difference(folder, files)
            failed |= bool(bad)
            print(('DIFFERS ' + ', '.join(bad) + ': ' if bad else 'ok ') + summary)
        else:
            folder.mkdir(parents=True, exist_ok=True)
            for n, b in files.items():
                (folder / n).write_bytes(b)
            print('wrote ' + summary)
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
