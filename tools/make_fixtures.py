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
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from seq2seq import (CONFIG_FIELDS, Seq2SeqTransformer, build_transformer, greedy, read_safetensors,
                     safetensors_bytes, sinusoid)

MIN_MARGIN = 1e-2  # smallest top-1 minus top-2 logit accepted at any greedy step
REPO = Path(__file__).resolve().parent.parent


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
# The case's model (seq2seq.py, batch size 1) with its random weights
# ---------------------------------------------------------------------------------------------

def position_table(c):
    """The stored pos_embedding ([P, 1, d_model] or [P, d_model]), or None for the computed
    sinusoid. A random table is drawn later, by draw_initial_weights."""
    if c['positions'] == 'none':
        return None
    rank, rows, kind = c['positions']
    table = sinusoid(rows, c['d_model']) if kind == 'sinusoid' else torch.zeros(rows, c['d_model'])
    return table.unsqueeze(1) if rank == 3 else table


def draw_initial_weights(model, c):
    """Draws every initial weight from the case's seed in the order the committed fixtures drew
    them: transformer, token embeddings, random positions, generator. (The model makes its
    modules in the tutorial's order, generator second, which would draw other numbers.)"""
    torch.manual_seed(c['seed'])
    model.transformer = build_transformer(c)
    model.src_tok_emb.embedding.reset_parameters()
    model.tgt_tok_emb.embedding.reset_parameters()
    if c['positions'] != 'none' and c['positions'][2] == 'random':
        pe = model.positional_encoding.pos_embedding
        pe.copy_((torch.randn(pe.shape[0], c['d_model']) * 0.5).reshape(pe.shape))
    if c['generator'] == 'linear':
        model.generator.reset_parameters()


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
    # generator last, as the committed fixtures drew
    named = sorted(model.named_parameters(), key=lambda item: item[0].startswith('generator.'))
    for name, p in named:
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
    model = Seq2SeqTransformer(c, positions=position_table(c), generator=c['generator'],
                               generator_bias=c['generator_bias'])
    with torch.no_grad():
        draw_initial_weights(model, c)
        randomize(model, c)
    return model.eval()


# ---------------------------------------------------------------------------------------------
# Forward passes (the greedy loop is seq2seq.greedy)
# ---------------------------------------------------------------------------------------------

def column(ids):
    return torch.tensor(ids, dtype=torch.int64).unsqueeze(1)


def forward_logits(model, src, tgt, pad_mask=True):
    """One teacher-forced pass of id lists src and tgt -> [len(tgt), tgt_vocab_size]."""
    return model(column(src), column(tgt), pad_mask)[:, 0]


def full_recompute(model, src):
    """The reference: nn.Transformer over the whole prefix at every step."""
    return lambda ys: forward_logits(model, src, ys)[-1]


def split_stacks(model, src):
    """Second implementation: transformer.encoder once, then transformer.decoder per step
    (with a boolean causal mask where the reference uses the float -inf one)."""
    s = column(src)
    pad = model.src_padding(s)
    memory = model.encode(s)

    def next_logits(ys):
        n = len(ys)
        causal = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
        out = model.transformer.decoder(model.embed_tgt(column(ys)), memory, tgt_mask=causal,
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
    c = model.config
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


def greedy_record(model, model64, c, src, max_new):
    """The reference greedy run (full recompute, float32), checked against the split
    implementation and against float64."""
    ids, stopped, margin = greedy(full_recompute(model, src), c, max_new)
    assert margin >= MIN_MARGIN, f"{c['name']}: margin {margin} at src {src}"
    assert greedy(split_stacks(model, src), c, max_new)[0] == ids, 'split greedy differs'
    assert greedy(full_recompute(model64, src), c, max_new)[0] == ids, 'float64 greedy differs'
    assert len(src) <= c['max_len'] and max_new <= c['max_len']
    return dict(src=src, max_new_tokens=max_new, ids=ids, stopped_by_eos=stopped, min_margin=margin)


# ---------------------------------------------------------------------------------------------
# The tensors of the file
# ---------------------------------------------------------------------------------------------

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
        full = forward_logits(model, src, tgt)
        k = max(1, len(tgt) // 2)
        assert close(forward_logits(model, src, tgt[:k]), full[:k], 1e-5), 'not causal'
        if c['pad_id'] in src:
            unmasked = forward_logits(model, src, tgt, pad_mask=False)
            assert not close(unmasked, full, 1e-2), f'{c["name"]}: the pad mask changes nothing'
            stripped = list(src)
            while stripped[-1] == c['pad_id']:
                stripped.pop()
            if c['pad_id'] not in stripped:
                assert close(forward_logits(model, stripped, tgt), full, 1e-5), 'trailing pads leak'


def build_case(c):
    model = build_model(c)
    with torch.no_grad():
        forward, picks, boosts = make_inputs(model, c)
        self_checks(model, c, forward)
        model64 = copy.deepcopy(model).double()
        diff64 = 0.0
        rows = []
        for src, tgt in forward:
            logits = forward_logits(model, src, tgt)
            diff64 = max(diff64, float((forward_logits(model64, src, tgt) - logits.double()).abs().max()))
            rows.append(dict(src=src, tgt=tgt, logits=[f32_number(v) for v in logits.reshape(-1).numpy()]))
        runs = [greedy_record(model, model64, c, src, max_new) for src, max_new in picks]
        for src, tgt in forward:
            assert len(src) <= c['max_len'] and len(tgt) <= c['max_len'] and tgt[0] == c['bos_id']

    tensors = state_tensors(model, c)
    spec_names = expected_names(c)
    assert set(model.state_dict()) == spec_names, set(model.state_dict()) ^ spec_names
    blob = safetensors_bytes({n: tensors[n] for n in sorted(tensors)}, metadata={'format': 'pt'},
                             reverse_data=c.get('reverse_data', False))
    back = read_safetensors(blob)
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
