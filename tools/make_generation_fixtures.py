#!/usr/bin/env python3
"""Beam search, sampling and batch fixtures for wasmformer, made by transformers' own generate().

Builds small random Marian folders with make_marian_fixtures.py's builder (same layout, same file
writer) into test/fixtures/generation/<case>/ (config.json, generation_config.json,
model.safetensors, expected.json). Their weights get a structure on top of make_marian_fixtures'
random ones, so that decodings are long, beams disagree and hypotheses end by themselves at
different lengths (plain random weights repeat one token until the length limit):

  - the decoder's stored position table is scaled up (each target position prefers other tokens)
    and carries a ramp along one direction u that grows with the position; eos's output embedding
    gets a component along u, so eos grows likelier as a decoding goes on;
  - the decoder's cross-attention output projections are scaled down (a source adds the same
    vector at every step, which otherwise makes every step choose the same token);
  - the last decoder norm is scaled up (sharper distributions);
  - final_logits_bias centres the logits: minus each token's mean logit over random teacher-forced
    inputs, plus a little noise, plus a per-case eos bias.

Folder cases (FOLDER_CASES, or --folder DIR --case NAME) record a trained folder instead, one
already in the repository, as it is: only expected.json is written, into
test/fixtures/generation/<case>/, and its model field names the folder for the tests to load.
The folder is read as for every case, MarianMTModel.from_pretrained(folder, dtype=torch.float32):
float16 weights are widened to float32 and computed in float32, which is what wasmformer does, so
that is the reference (from_pretrained's default dtype, "auto", would compute in float16 instead;
checks.float16_same_ids counts the kept examples that float16 decodes the same). The float64 and
jittered copies are copies of those widened weights. Sources are held-out pairs from the folder's
heldout.json (train_marian_demo.py's layout, whose input_ids are MarianTokenizer(en).input_ids,
asserted): per band of source lengths (bands), candidates pairs drawn at random (seeded), of
which keep are kept as random sources are (below). The settings, batches and sampling records are
the random cases' (sampled of them, each six rows of the whole vocabulary, tried flattest first
step first). Besides, the kept greedy and beam-4 examples must be the ids heldout.json recorded
for their pairs, and texts gives the English of each source and the German of those outputs, for
a text-level test.

Sources are random (3 to 17 ids, eos last); of CANDIDATES, KEEP are kept among those whose greedy
and beam-4 runs are robust (below), preferring those where early_stopping "never" or
(length_penalty 0.6, early_stopping True) changes the best beam-4 hypothesis, which is rarer than
the other settings' changes. The settings are those of settings() (what issue 10 asks to test, plus
beam4_return4, which returns hypotheses of different lengths); bad_words_ids takes the bigram and
a trigram that the sources' beam-4 outputs use most.

For every source and setting, it runs model.generate(input_ids, return_dict_in_generate=True,
output_scores=True, **kwargs) (kwargs recorded; everything else from the folder's
generation_config.json and transformers' global defaults), and keeps an example only if a float64
copy of the model (the folder loaded again, .double()) and a copy whose weights are jittered by
JITTER (relative) decode the same ids, so float rounding cannot flip it. Every beam example is also
re-derived by reference_beam_search below, an independent implementation of the algorithm that
tools/BEAM_SEARCH.md describes; the script stops if one disagrees. Batches of the kept sources are
decoded together (right-padded with pad_token_id, attention_mask 0 on the padding, as
MarianTokenizer pads) and must equal the single runs. Seeded, single-threaded: about 3 minutes
for the random cases, about 20 minutes for en_de_messages.

expected.json:
  case, about, transformers_version, torch_version
  model: (folder cases) the folder recorded, relative to the repository's root; the case's
         directory holds only expected.json
  weights: (random cases) the structure's parameters (see CASES)
  generation_config: the folder's generation fields (what kwargs do not override)
  sources: [[id, ...]]    each ends with eos, as MarianTokenizer makes them
  settings: [{name, kwargs, examples: [{source, outputs: [output], ties: [[i, j, ...]]}],
              dropped: {float64: [source], jitter: [source]}}]
    kwargs: exactly what generate() was given besides input_ids
    source: an index into sources
    output: {ids, eos, length, score}
      ids: the generated tokens without the start token and without a final eos
      eos: whether the hypothesis ended with eos (false only when it ran into the length limit
           with no forced eos)
      length: the generated length as the length penalty counts it, len(ids) + eos
      score: sequences_scores (float32, shortest round-tripping decimal) for beams, null for greedy
    outputs: the returned hypotheses (num_return_sequences of them), best first
    ties: groups of outputs whose scores lie within TIE of each other (chained); a test compares
          each group as a set, since their order is float rounding
    dropped: sources left out because the float64 or the jittered copy decoded other ids
  batches: [{name, kwargs, sources: [source], input_ids, attention_mask, outputs: [[output]]}]
    one generate() over the listed sources as one right-padded batch; outputs per source, equal to
    the single runs of the setting with the same kwargs (asserted)
  sampling: {draws, sources: [{source, logits, settings: [{name, kwargs, effective, scores, allowed}]}]}
    logits: the first step's scores after the folder's processors (bad_words_ids, ...) and before
            any sampling warper, i.e. generate(do_sample=False)'s scores[0]; null stands for -inf
    kwargs: a sampling setting (num_beams 1, do_sample true); effective: the temperature, top_k
            and top_p it ran with (top_k is transformers' global default 50 unless kwargs set it)
    scores: generate(**kwargs, max_new_tokens=2)'s scores[0], the warped scores the first token
            is drawn from (softmax(scores)); null for -inf (the limit of 2 only keeps the forced
            eos away from step 1)
    allowed: the ids with a finite score (the top-k / top-p set)
    (checked here: draws first tokens drawn by transformers all lie in allowed and their
    frequencies are within 5 sigma of softmax(scores); and scores equal temperature, top-k and
    top-p applied to logits as tools/BEAM_SEARCH.md describes)
  checks: {robust_candidates: how many candidate sources had robust greedy and beam-4 runs,
           reference_beam_search: how many examples reference_beam_search re-derived, jitter,
           max_logit_change_jitter / _float64: the largest teacher-forced logit change from the
           float32 model to the jittered / float64 copy, max_score_difference_float64,
           float16_same_ids: (folder cases with float16 weights) per setting, "n of kept": how
           many kept examples the folder decodes to the same ids (ties as sets) when computed
           in float16, as from_pretrained loads it by default}
  texts: (folder cases) {sources: [text], heldout: [index], settings: [{name, examples: [{source, outputs: [text]}]}]}
    sources: the English of each source (heldout.json's en); heldout: its index in heldout.json's items
    settings: greedy and beam4 (TEXT_SETTINGS), their examples in the same order: each output's
              German, MarianTokenizer.decode(ids, skip_special_tokens=True) with the folder's tokenizer

Run with the venv that has transformers 5.18 (see make_marian_fixtures.py):
  .venv/bin/python tools/make_generation_fixtures.py [--case NAME] [--out DIR]    every case, or those named
  .venv/bin/python tools/make_generation_fixtures.py --folder models/en-de-messages --case en_de_messages
"""

import argparse
import json
import math
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import MarianMTModel, MarianTokenizer

from make_marian_fixtures import REPO, build_model, f32, save_folder

JITTER = 1e-5    # relative jitter of every weight in the robustness copy
TIE = 1e-5       # scores closer than this are compared as a set
CANDIDATES = 40  # random sources tried per case
KEEP = 8         # sources kept per case (choose_sources)
DRAWS = 4000     # first tokens drawn per sampling setting to check the recorded distribution
SAMPLED = 3      # sources with sampling records per case
ABOUT = ('Batches are right-padded with pad_token_id (attention_mask 0 there), as MarianTokenizer pads; their '
         'rows equal the single runs (Marian\'s positions count from 0 in every row, so right padding changes no '
         'real position). bad_words_ids in kwargs replaces the folder\'s, so it repeats [[pad]].')

# Each case: make_marian_fixtures' case fields (config, generation, positions, store, dtype,
# generation_in, seed), the weight structure, and the lengths its settings use.
# structure: positions (scale of the decoder position table), eos_ramp (length of the ramp along u
# at position 20), eos_gain (eos's output embedding along u), cross (scale of the cross-attention
# output projections), sharpness (scale of the last decoder norm, so of the logits), noise (std of
# the logits bias noise), eos_bias (added to eos's bias). Tuned by hand per case until beams
# disagree and end at many lengths, in every setting.
CASES = [
    dict(name='swish_shared_vocab', about='opus-mt\'s shape in small: swish, scaled embeddings, one '
         'shared vocabulary of 320 (model.shared only), eos 0, forced eos, max_length 48 of 64 positions.',
         config=dict(vocab_size=320, pad_token_id=319, decoder_start_token_id=319, d_model=32,
                     encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64),
         generation=dict(bad_words_ids=[[319]], max_length=48), positions='stored', store='shared',
         dtype=torch.float32, generation_in='file', seed=21,
         structure=dict(positions=2.0, eos_ramp=10.0, eos_gain=2.0, cross=0.5, sharpness=1.5, noise=0.1, eos_bias=0.2),
         limit_max_new_tokens=6, min_new_tokens=20),
    dict(name='gelu_separate_vocabs', about='gelu, unscaled embeddings, separate vocabularies (source 300, '
         'target 257, lm_head tied to the decoder embedding), max_length 48 equal to max_position_embeddings '
         '(as opus-mt\'s 512 and 512).',
         config=dict(activation_function='gelu', scale_embedding=False, share_encoder_decoder_embeddings=False,
                     vocab_size=300, decoder_vocab_size=257, pad_token_id=256, decoder_start_token_id=256,
                     d_model=32, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=48),
         generation=dict(bad_words_ids=[[256]], max_length=48), positions='stored', store='split',
         dtype=torch.float32, generation_in='file', seed=26,
         structure=dict(positions=1.0, eos_ramp=10.0, eos_gain=2.0, cross=0.5, sharpness=1.5, noise=0.1, eos_bias=0.2),
         limit_max_new_tokens=7, min_new_tokens=25),
    dict(name='odd_width_eos3_no_forced_eos', about='relu, d_model 30 with 5 encoder and 3 decoder heads, 1 '
         'encoder and 3 decoder layers, FFN 44 and 52, eos 3 (not 0), no forced_eos_token_id (a hypothesis '
         'that reaches max_length 40 ends without eos), shared vocabulary of 280.',
         config=dict(activation_function='relu', vocab_size=280, pad_token_id=279, decoder_start_token_id=279,
                     d_model=30, encoder_attention_heads=5, decoder_attention_heads=3, encoder_layers=1,
                     decoder_layers=3, encoder_ffn_dim=44, decoder_ffn_dim=52, eos_token_id=3,
                     forced_eos_token_id=None, max_position_embeddings=56),
         generation=dict(bad_words_ids=[[279]], max_length=40), positions='stored', store='shared',
         dtype=torch.float32, generation_in='file', seed=23,
         structure=dict(positions=2.0, eos_ramp=10.0, eos_gain=2.0, cross=0.5, sharpness=1.5, noise=0.1, eos_bias=0.2),
         limit_max_new_tokens=6, min_new_tokens=18),
]

# Each folder case: a trained folder already in the repository (relative to REPO), recorded as it
# is; its sources are held-out pairs of its heldout.json (train_marian_demo.py's layout). bands:
# source lengths (eos included), from each of which candidates pairs drawn with seed are tried and
# keep are kept (choose_heldout_sources); sampled: sources with sampling records (each holds 6 rows
# of the whole vocabulary, about 250 KB at 7044 ids), flattest_sampled: tried flattest first
# step first (a trained model's first token is often over 0.8 likely, which leaves top_p 0.8 one
# token); the lengths its settings use as in CASES.
FOLDER_DEFAULTS = dict(bands=((2, 4), (5, 8), (9, 14), (15, 20), (21, 30), (31, 40)), candidates=15,
                       keep=(3, 4, 4, 3, 3, 3), seed=1, sampled=1, flattest_sampled=True,
                       limit_max_new_tokens=6, min_new_tokens=12)
FOLDER_CASES = [
    dict(FOLDER_DEFAULTS, name='en_de_messages', folder='models/en-de-messages',
         about='The trained English -> German demo (train_marian_demo.py): swish, d_model 256, 3 + 3 layers, one '
         'shared vocabulary of 7044 (pad 7043, eos 0), forced eos, max_length 512, float16 weights. Recorded in '
         'float32 over the weights widened to float32, as wasmformer computes (from_pretrained\'s default '
         'dtype would compute in float16: checks.float16_same_ids). Sources are held-out texts (texts.sources) '
         'as MarianTokenizer encodes them.'),
]

COMMON = dict(return_dict_in_generate=True, output_scores=True)
SAMPLING = [
    ('temperature0.7', dict(temperature=0.7)),
    ('temperature1.3', dict(temperature=1.3)),
    ('top_k5', dict(top_k=5)),
    ('top_p0.8', dict(top_p=0.8)),
    ('temperature0.7_top_k5_top_p0.8', dict(temperature=0.7, top_k=5, top_p=0.8)),
]
# What generate() falls back on when neither kwargs nor the folder say (GenerationConfig's
# _get_default_generation_params); only the fields the settings here can leave unset.
DEFAULTS = dict(length_penalty=1.0, early_stopping=False, num_return_sequences=1, repetition_penalty=1.0,
                no_repeat_ngram_size=0, min_new_tokens=0, max_new_tokens=None, bad_words_ids=None,
                forced_eos_token_id=None, temperature=1.0, top_k=50, top_p=1.0)


def settings(case, bad_words):
    """The settings of one case, (name, kwargs for generate besides input_ids), in recording order."""
    beam4 = dict(num_beams=4)
    return [
        ('greedy', dict(num_beams=1)),
        ('beam4', dict(beam4, length_penalty=1.0, early_stopping=False)),
        ('beam4_lp0.6_early_stopping', dict(beam4, length_penalty=0.6, early_stopping=True)),
        ('beam4_early_stopping_never', dict(beam4, early_stopping='never')),
        ('beam5_lp2_return3', dict(num_beams=5, length_penalty=2.0, num_return_sequences=3)),
        ('beam4_return4', dict(beam4, num_return_sequences=4)),
        ('beam4_max_new_tokens', dict(beam4, max_new_tokens=case['limit_max_new_tokens'])),
        ('beam4_no_repeat_ngram2', dict(beam4, no_repeat_ngram_size=2)),
        ('greedy_no_repeat_ngram3', dict(num_beams=1, no_repeat_ngram_size=3)),
        ('beam4_repetition_penalty1.3', dict(beam4, repetition_penalty=1.3)),
        ('greedy_repetition_penalty1.3', dict(num_beams=1, repetition_penalty=1.3)),
        ('beam4_min_new_tokens', dict(beam4, min_new_tokens=case['min_new_tokens'])),
        ('beam4_bad_words', dict(beam4, bad_words_ids=bad_words)),
    ]


# ---- the weights ----------------------------------------------------------------------------

def structure(model, case):
    """The per-position structure and the eos ramp of the module docstring, in place."""
    s, eos = case['structure'], model.config.eos_token_id
    g = torch.Generator().manual_seed(case['seed'] + 1000)
    decoder = model.model.decoder
    with torch.no_grad():
        positions = decoder.embed_positions.weight  # (max_position_embeddings, d_model)
        u = torch.randn(positions.shape[1], generator=g)
        u /= u.norm()
        t = torch.arange(positions.shape[0], dtype=torch.float32)[:, None]
        positions.mul_(s['positions']).add_(s['eos_ramp'] * (t / 20) * u)
        model.get_output_embeddings().weight[eos] += s['eos_gain'] * u
        for layer in decoder.layers:
            layer.encoder_attn.out_proj.weight.mul_(s['cross'])
        decoder.layers[-1].final_layer_norm.weight.mul_(s['sharpness'])  # the output's scale: logits
        decoder.layers[-1].final_layer_norm.bias.mul_(s['sharpness'])
        centre_logits(model, case, g)


def centre_logits(model, case, g):
    """final_logits_bias = minus each token's mean logit over random teacher-forced inputs, plus noise."""
    c, s = model.config, case['structure']
    src = random_sources(g, c, 64, 12)
    tgt = torch.randint(0, target_vocab(c), (64, case['generation']['max_length'] - 1), generator=g)
    tgt[:, 0] = c.decoder_start_token_id
    with torch.no_grad():
        model.final_logits_bias.zero_()
        mean = model(input_ids=src, decoder_input_ids=tgt).logits.mean(dim=(0, 1))
        model.final_logits_bias[0] = -mean + s['noise'] * torch.randn(mean.shape, generator=g)
        model.final_logits_bias[0, c.eos_token_id] += s['eos_bias']


def target_vocab(config):
    return config.vocab_size if config.share_encoder_decoder_embeddings else config.decoder_vocab_size


def random_sources(g, config, n, length):
    """n random sources of the given length, the last id eos; no pad or eos inside."""
    ids = torch.randint(0, config.vocab_size, (n, length), generator=g)
    ids[(ids == config.pad_token_id) | (ids == config.eos_token_id)] = config.eos_token_id + 1  # neither here
    ids[:, -1] = config.eos_token_id
    return ids


def candidate_sources(case, config):
    """CANDIDATES sources of lengths 3 to 17 (eos included)."""
    g = torch.Generator().manual_seed(case['seed'] + 2000)
    lengths = torch.randint(3, 18, (CANDIDATES,), generator=g).tolist()
    return [random_sources(g, config, 1, n)[0].tolist() for n in lengths]


def jittered(model, seed):
    """The model with every weight multiplied by (1 + JITTER * N(0, 1)), in place."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1 + JITTER * torch.randn(p.shape, generator=g, dtype=p.dtype))
        model.final_logits_bias.mul_(1 + JITTER * torch.randn(model.final_logits_bias.shape, generator=g))
    return model


# ---- running generate -----------------------------------------------------------------------

def generate(model, sources, kwargs):
    """generate() over sources as one right-padded batch; per source its returned hypotheses."""
    input_ids, mask = pad(sources, model.config.pad_token_id)
    with torch.no_grad():
        out = model.generate(torch.tensor(input_ids), attention_mask=torch.tensor(mask), **{**COMMON, **kwargs})
    per_source = kwargs.get('num_return_sequences', 1)
    return [hypotheses(out, model.generation_config.eos_token_id, i * per_source, per_source)
            for i in range(len(sources))]


def pad(sources, pad_id):
    """Right padding with pad_id and the attention mask, as MarianTokenizer(padding=True) does."""
    width = max(map(len, sources))
    return ([s + [pad_id] * (width - len(s)) for s in sources],
            [[1] * len(s) + [0] * (width - len(s)) for s in sources])


def hypotheses(out, eos, first, count):
    """Rows first .. first + count - 1 of a generate() output as output records."""
    rows = []
    for r in range(first, first + count):
        seq = out.sequences[r, 1:].tolist()
        if getattr(out, 'sequences_scores', None) is not None:
            length = int((out.beam_indices[r] >= 0).sum())  # -1 past a hypothesis' last step
            score = f32(out.sequences_scores[r])
        else:
            length = seq.index(eos) + 1 if eos in seq else len(seq)  # padding follows a finished row
            score = None
        ids = seq[:length]
        ended = bool(ids) and ids[-1] == eos
        rows.append(dict(ids=ids[:-1] if ended else ids, eos=ended, length=length, score=score))
    return rows


def ties(outputs):
    """Groups (index lists) of consecutive outputs whose scores are within TIE of the previous one."""
    groups, current = [], [0]
    for i in range(1, len(outputs)):
        if outputs[i]['score'] is not None and abs(outputs[i]['score'] - outputs[i - 1]['score']) <= TIE:
            current.append(i)
        else:
            groups.append(current)
            current = [i]
    groups.append(current)
    return [g for g in groups if len(g) > 1]


def same_ids(a, b, groups):
    """Whether two hypothesis lists hold the same ids, each tie group compared as a set."""
    if len(a) != len(b):
        return False
    tied = {i for g in groups for i in g}
    if any(a[i]['ids'] != b[i]['ids'] for i in range(len(a)) if i not in tied):
        return False
    return all(sorted(tuple(a[i]['ids']) for i in g) == sorted(tuple(b[i]['ids']) for i in g) for g in groups)


# ---- the independent reference --------------------------------------------------------------

def effective(model, kwargs):
    """The generation parameters a run uses: kwargs, else the folder's generation config, else DEFAULTS."""
    folder = model.generation_config.to_dict()
    p = {k: kwargs.get(k, folder.get(k) if folder.get(k) is not None else v) for k, v in DEFAULTS.items()}
    p['num_beams'] = kwargs.get('num_beams', folder['num_beams'])
    # max_new_tokens counts generated tokens; max_length counts the start token too
    p['max_length'] = p['max_new_tokens'] + 1 if p['max_new_tokens'] is not None else folder['max_length']
    p['eos'], p['start'] = folder['eos_token_id'], folder['decoder_start_token_id']
    return p


def encode(model, src):
    """The encoder's output for one source, (1, len(src), d_model)."""
    with torch.no_grad():
        return model.get_encoder()(input_ids=torch.tensor([src])).last_hidden_state


def log_probs(model, memory, prefixes):
    """log_softmax of the next-token logits after each prefix, float32: the decoder over the whole
    prefix (no cache) on the source's encoder output, the output layer on its last position only
    (the cost of a 511-token hypothesis is the decoder's, not 511 x vocab logits per step)."""
    with torch.no_grad():
        hidden = model.model.decoder(input_ids=torch.tensor(prefixes), use_cache=False,
                                     encoder_hidden_states=memory.expand(len(prefixes), -1, -1)).last_hidden_state
        logits = model.lm_head(hidden[:, -1]) + model.final_logits_bias[0]
    return torch.log_softmax(logits.float(), dim=-1).numpy()


def process(prefix, row, p):
    """The logits processors transformers applies to one beam's log-probabilities, in its order."""
    row = row.copy()
    if p['repetition_penalty'] != 1.0:
        for t in set(prefix):
            row[t] = row[t] * p['repetition_penalty'] if row[t] < 0 else row[t] / p['repetition_penalty']
    n = p['no_repeat_ngram_size']
    if n and len(prefix) >= n:
        for i in range(len(prefix) - n + 1):
            if prefix[i:i + n - 1] == prefix[len(prefix) - n + 1:]:
                row[prefix[i + n - 1]] = -np.inf
    for word in p['bad_words_ids'] or []:
        if word == [p['eos']]:
            continue  # a lone eos is never banned
        if len(word) == 1 or (len(prefix) >= len(word) - 1 and prefix[len(prefix) - len(word) + 1:] == word[:-1]):
            row[word[-1]] = -np.inf
    if len(prefix) - 1 < p['min_new_tokens']:
        row[p['eos']] = -np.inf
    if p['forced_eos_token_id'] is not None and len(prefix) == p['max_length'] - 1:
        row[:] = -np.inf
        row[p['forced_eos_token_id']] = 0.0
    return row


def reference_beam_search(model, src, p):
    """Beam search as tools/BEAM_SEARCH.md states it, for one source: the returned hypotheses."""
    k, eos, lp, early = p['num_beams'], p['eos'], p['length_penalty'], p['early_stopping']
    beams = [([p['start']], np.float32(0.0))] + [([p['start']], np.float32(-1e9))] * (k - 1)
    finished = []  # (score / length ** lp, ids), best first, at most k
    memory = encode(model, src)
    while True:
        rows = log_probs(model, memory, [ids for ids, _ in beams])
        totals = np.concatenate([score + process(ids, row, p) for (ids, score), row in zip(beams, rows)])
        vocab = rows.shape[1]
        running, all_done = [], True
        for rank, i in enumerate(np.argsort(-totals, kind='stable')[:2 * k]):
            ids = beams[i // vocab][0] + [int(i % vocab)]
            if ids[-1] == eos or len(ids) >= p['max_length']:
                if rank < k:  # a finished candidate counts only among the k best
                    finished.append((np.float32(totals[i] / (len(ids) - 1) ** lp), ids))
            else:
                all_done = False
                running.append((ids, totals[i]))
        finished = sorted(finished, key=lambda f: -f[0])[:k]
        if all_done:
            break
        beams = running[:k]
        if len(finished) == k:
            if early is True:
                break
            length = p['max_length'] - 1 if early == 'never' and lp > 0 else len(beams[0][0]) - 1
            if beams[0][1] / length ** lp <= finished[-1][0]:
                break
    return [dict(ids=ids[1:-1] if ids[-1] == eos else ids[1:], score=float(score))
            for score, ids in finished[:p['num_return_sequences']]]


def check_reference(model, src, kwargs, outputs):
    """reference_beam_search gives transformers' hypotheses (ties as sets) and scores."""
    p = effective(model, kwargs)
    got = reference_beam_search(model, src, p)
    assert same_ids(got, outputs, ties(outputs)), (src, kwargs, got, outputs)
    for g, o in zip(got, outputs):
        assert abs(g['score'] - o['score']) <= 1e-5 * max(1.0, abs(o['score'])), (src, kwargs, g, o)


# ---- sampling -------------------------------------------------------------------------------

def finite_or_null(row):
    return [f32(v) if math.isfinite(v) else None for v in row.tolist()]


def first_scores(model, src, kwargs):
    """scores[0] of a generate() run: the first step's processed (and, sampling, warped) scores."""
    with torch.no_grad():
        out = model.generate(torch.tensor([src]), max_new_tokens=2, **COMMON, **kwargs)
    return out.scores[0][0]


def warp(logits, p):
    """Temperature, then top-k, then top-p on one row of scores, as transformers' warpers do."""
    scores = logits / p['temperature']
    if p['top_k']:
        kth = torch.topk(scores, min(p['top_k'], scores.numel())).values[-1]
        scores = scores.masked_fill(scores < kth, -math.inf)
    if p['top_p'] < 1.0:
        ascending, order = torch.sort(scores)
        remove = ascending.softmax(-1).cumsum(-1) <= 1 - p['top_p']
        remove[-1] = False  # min_tokens_to_keep 1
        scores = scores.masked_fill(remove.scatter(0, order, remove), -math.inf)
    return scores


def check_draws(model, src, kwargs, scores):
    """DRAWS first tokens drawn by transformers lie in the allowed set, at softmax(scores)'s rates."""
    torch.manual_seed(1)
    with torch.no_grad():
        out = model.generate(torch.tensor([src] * DRAWS), max_new_tokens=2, **kwargs)
    counts = torch.bincount(out[:, 1], minlength=scores.numel()).double()
    probs = scores.double().softmax(-1)
    assert (counts[probs == 0] == 0).all(), (src, kwargs)
    sigma = (probs * (1 - probs) / DRAWS).sqrt()
    assert ((counts / DRAWS - probs).abs() <= 5 * sigma + 1 / DRAWS).all(), (src, kwargs)


def sampling_record(models, src):
    """One source's sampling record, or None if the float64 or jittered copy allows another set."""
    model = models['float32']
    logits = first_scores(model, src, dict(num_beams=1, do_sample=False))
    record = dict(logits=finite_or_null(logits), settings=[])
    for name, kw in SAMPLING:
        kwargs = dict(num_beams=1, do_sample=True, **kw)
        scores = first_scores(model, src, kwargs)
        allowed = torch.isfinite(scores).nonzero().flatten().tolist()
        for other in ('float64', 'jitter'):
            if torch.isfinite(first_scores(models[other], src, kwargs)).nonzero().flatten().tolist() != allowed:
                return None
        p = effective(model, kwargs)
        ours = warp(logits, p)
        assert torch.equal(torch.isfinite(ours), torch.isfinite(scores)), (src, name)
        assert torch.allclose(ours[torch.isfinite(ours)], scores[torch.isfinite(scores)], atol=1e-6), (src, name)
        check_draws(model, src, kwargs, scores)
        record['settings'].append(dict(name=name, kwargs=kwargs, scores=finite_or_null(scores), allowed=allowed,
                                       effective={k: p[k] for k in ('temperature', 'top_k', 'top_p')}))
    return record


# ---- one case -------------------------------------------------------------------------------

def robust_run(models, src, kwargs):
    """The float32 model's outputs for src, with dropped_by: None if the float64 and the jittered
    copies decode the same ids, else the first that does not; and the largest score difference
    from the float64 copy."""
    outputs = generate(models['float32'], [src], kwargs)[0]
    run = dict(outputs=outputs, dropped_by=None, score_difference=0.0)
    for other in ('float64', 'jitter'):
        theirs = generate(models[other], [src], kwargs)[0]
        if not same_ids(outputs, theirs, ties(outputs)):
            return dict(run, dropped_by=other)
        if other == 'float64' and outputs[0]['score'] is not None:
            run['score_difference'] = max(abs(a['score'] - b['score']) for a, b in zip(outputs, theirs))
    return run


def is_robust(models, src):
    """Whether src's greedy and beam-4 runs are robust (robust_run drops neither)."""
    return all(robust_run(models, src, dict(num_beams=n))['dropped_by'] is None for n in (1, 4))


def most_telling(model, sources, n):
    """The indices of the n most telling of sources (telling; the earlier first among equals), in order."""
    ranked = sorted(range(len(sources)), key=lambda i: (-telling(model, sources[i]), i))
    return sorted(ranked[:n])


def choose_sources(models, case):
    """KEEP of the candidate sources whose greedy and beam-4 runs are robust, the most telling
    ones; and how many candidates were robust."""
    candidates = candidate_sources(case, models['float32'].config)
    robust = [s for s in candidates if is_robust(models, s)]
    return [robust[i] for i in most_telling(models['float32'], robust, KEEP)], f'{len(robust)} of {len(candidates)}'


def choose_heldout_sources(models, case, items):
    """choose_sources over held-out pairs, band by band: of each band's candidates (heldout_candidates),
    its keep count of the most telling among those whose greedy and beam-4 runs are robust (the
    earlier drawn first among equals). The chosen pairs' indices into items, shortest band first
    and in file order within a band; and how many candidates were robust."""
    chosen, robust_count, tried = [], 0, 0
    for band, keep in zip(heldout_candidates(case, items), case['keep']):
        robust = [i for i in band if is_robust(models, items[i]['input_ids'])]
        chosen += sorted(robust[j] for j in most_telling(models['float32'], [items[i]['input_ids'] for i in robust], keep))
        robust_count, tried = robust_count + len(robust), tried + len(band)
    return chosen, f'{robust_count} of {tried}'


def heldout_candidates(case, items):
    """Per band of case['bands'] (lowest, highest source length, eos included), case['candidates']
    indices of held-out pairs of that length drawn at random (seeded), in the order drawn: a
    source's telling is mostly 0 on a trained model, so the draw, not heldout.json's order (by
    English text), decides among equals."""
    g = torch.Generator().manual_seed(case['seed'] + 2000)
    bands = []
    for low, high in case['bands']:
        inside = [i for i, item in enumerate(items) if low <= len(item['input_ids']) <= high]
        bands.append([inside[j] for j in torch.randperm(len(inside), generator=g)[:case['candidates']].tolist()])
    return bands


def telling(model, src):
    """How many of early_stopping 'never' and (length_penalty 0.6, early_stopping True) change the
    best beam-4 hypothesis of src: the rarer differences, which sources are chosen for."""
    def best(kwargs):
        return generate(model, [src], dict(num_beams=4, **kwargs))[0][0]['ids']
    plain = best({})
    others = (dict(early_stopping='never'), dict(length_penalty=0.6, early_stopping=True))
    return sum(best(kw) != plain for kw in others)


def pick_bad_words(outputs, pad_id):
    """[[pad]], the bigram found in most of the sources' best beam-4 hypotheses, and the trigram
    found in most of them that does not hold that bigram (so that each of the two can matter)."""
    def ranked(n):
        counts = Counter(g for ids in outputs for g in {tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)})
        return sorted(counts, key=lambda g: (-counts[g], g))
    bigram = ranked(2)[0]
    trigram = next(g for g in ranked(3) if bigram not in (g[:2], g[1:]))
    return [[pad_id], list(bigram), list(trigram)]


def record_settings(models, sources, case):
    """Every setting's robust examples over the sources, with the sources each filter dropped; and
    the largest score difference between the float32 and the float64 runs kept."""
    best = [generate(models['float32'], [src], dict(num_beams=4))[0][0]['ids'] for src in sources]
    records, score_difference = [], 0.0
    for name, kwargs in settings(case, pick_bad_words(best, models['float32'].config.pad_token_id)):
        kwargs = dict(COMMON, **kwargs)
        examples, dropped = [], dict(float64=[], jitter=[])
        for i, src in enumerate(sources):
            run = robust_run(models, src, kwargs)
            if run['dropped_by']:
                dropped[run['dropped_by']].append(i)
                continue
            if kwargs['num_beams'] > 1:
                check_reference(models['float32'], src, kwargs, run['outputs'])
            score_difference = max(score_difference, run['score_difference'])
            examples.append(dict(source=i, outputs=run['outputs'], ties=ties(run['outputs'])))
        records.append(dict(name=name, kwargs=kwargs, examples=examples, dropped=dropped))
    return records, score_difference


def record_batch(model, sources, setting):
    """The setting's robust sources decoded as one batch; asserts each row equals its single run."""
    indices = [e['source'] for e in setting['examples']]
    batch = [sources[i] for i in indices]
    outputs = generate(model, batch, setting['kwargs'])
    for got, example in zip(outputs, setting['examples']):
        assert same_ids(got, example['outputs'], example['ties']), (setting['name'], got, example)
        for g, o in zip(got, example['outputs']):
            assert g['score'] is None or abs(g['score'] - o['score']) <= 1e-5, (setting['name'], g, o)
    input_ids, mask = pad(batch, model.config.pad_token_id)
    return dict(name=f"batch_{setting['name']}", kwargs=setting['kwargs'], sources=indices, input_ids=input_ids,
                attention_mask=mask, outputs=outputs)


def load(folder):
    """The folder read back three ways: float32, float64 and float32 with jittered weights."""
    def read():
        return MarianMTModel.from_pretrained(folder, dtype=torch.float32).eval()
    return dict(float32=read(), float64=read().double(), jitter=jittered(read(), 7))


def max_logit_change(models, sources, other):
    """The largest change of a teacher-forced logit from the float32 model to the other copy."""
    change = 0.0
    for src in sources:
        tgt = torch.tensor([[models['float32'].config.decoder_start_token_id] + [1] * 30])
        with torch.no_grad():
            a, b = (models[m](input_ids=torch.tensor([src]), decoder_input_ids=tgt).logits.double()
                    for m in ('float32', other))
        change = max(change, float((a - b).abs().max()))
    return change


def sampling_records(models, sources, count, order):
    """Sampling records of the first count sources, tried in order (indices), whose allowed sets are robust."""
    records = []
    for i in order:
        record = sampling_record(models, sources[i])
        if record is not None:
            records.append(dict(source=i, **record))
        if len(records) == count:
            break
    return records


def record(models, sources, case, robust):
    """expected.json's fields from generation_config on, for the chosen sources: the settings'
    examples, the batches, the sampling records and the checks."""
    records, score_difference = record_settings(models, sources, case)
    by_name = {r['name']: r for r in records}
    checks = dict(robust_candidates=robust,
                  reference_beam_search=sum(len(r['examples']) for r in records if r['kwargs']['num_beams'] > 1),
                  jitter=JITTER, max_logit_change_jitter=max_logit_change(models, sources, 'jitter'),
                  max_logit_change_float64=max_logit_change(models, sources, 'float64'),
                  max_score_difference_float64=score_difference)
    generation_config = models['float32'].generation_config.to_diff_dict()
    generation_config.pop('transformers_version', None)
    return dict(generation_config=generation_config, sources=sources, settings=records,
                batches=[record_batch(models['float32'], sources, by_name[n]) for n in ('greedy', 'beam4')],
                sampling=dict(draws=DRAWS, sources=sampling_records(models, sources, case.get('sampled', SAMPLED),
                                                                    sampling_order(models['float32'], sources, case))),
                checks=checks)


def sampling_order(model, sources, case):
    """The order sampling_records tries sources in: as they are, or with flattest_sampled by the
    first step's largest probability (logits as sampling_record takes them), lowest first."""
    if not case.get('flattest_sampled'):
        return range(len(sources))
    top = [float(first_scores(model, src, dict(num_beams=1, do_sample=False)).softmax(-1).max()) for src in sources]
    return sorted(range(len(sources)), key=lambda i: (top[i], i))


def write_expected(folder, expected):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'expected.json').write_text(json.dumps(expected, separators=(',', ':')) + '\n')


def make_case(case, out):
    """Writes the case's folder and expected.json; returns expected.json's content and the folder."""
    folder = out / case['name']
    shutil.rmtree(folder, ignore_errors=True)
    model = build_model(case, 0.0)
    structure(model, case)
    save_folder(folder, case, model)
    models = load(folder)
    sources, robust = choose_sources(models, case)
    expected = dict(case=case['name'], about=case['about'] + ' ' + ABOUT, transformers_version=transformers.__version__,
                    torch_version=torch.__version__, weights=case['structure'], **record(models, sources, case, robust))
    write_expected(folder, expected)
    return expected, folder


def make_folder_case(case, out):
    """Records the case's trained folder: writes only expected.json (with model, the folder's path
    from REPO, and texts) into out / name; returns its content and that directory."""
    model_folder = (REPO / case['folder']).resolve()
    models = load(model_folder)
    items = json.loads((model_folder / 'heldout.json').read_text())['items']
    chosen, robust = choose_heldout_sources(models, case, items)
    body = record(models, [items[i]['input_ids'] for i in chosen], case, robust)
    check_heldout(body['settings'], [items[i] for i in chosen], models['float32'].config.eos_token_id)
    body['checks']['float16_same_ids'] = float16_same_ids(model_folder, body['sources'], body['settings'])
    expected = dict(case=case['name'], about=case['about'] + ' ' + ABOUT, model=from_repo(model_folder),
                    transformers_version=transformers.__version__, torch_version=torch.__version__, **body,
                    texts=texts(model_folder, [items[i] for i in chosen], chosen, body['settings']))
    folder = out / case['name']
    write_expected(folder, expected)
    return expected, folder


def from_repo(path):
    """path relative to the repository's root (as posix), or as it is when it lies outside."""
    return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else path.as_posix()


TEXT_SETTINGS = ('greedy', 'beam4')  # the settings whose outputs texts decodes


def texts(model_folder, items, chosen, records):
    """The English of each source (asserted to encode to it with the folder's MarianTokenizer), its
    index in heldout.json, and the German of each TEXT_SETTINGS output as MarianTokenizer decodes it."""
    tokenizer = MarianTokenizer.from_pretrained(model_folder)
    for item in items:
        assert tokenizer(item['en']).input_ids == item['input_ids'], item
    def german(example):
        return dict(source=example['source'],
                    outputs=[tokenizer.decode(o['ids'], skip_special_tokens=True) for o in example['outputs']])
    return dict(sources=[item['en'] for item in items], heldout=chosen,
                settings=[dict(name=r['name'], examples=[german(e) for e in r['examples']])
                          for r in records if r['name'] in TEXT_SETTINGS])


def check_heldout(records, items, eos):
    """The greedy and beam-4 examples kept are the ids heldout.json recorded for their pairs."""
    for r in records:
        if r['name'] in TEXT_SETTINGS:
            for e in r['examples']:
                o = e['outputs'][0]
                assert o['ids'] + [eos] * o['eos'] == items[e['source']][f"{r['name']}_ids"], (r['name'], e)


def float16_same_ids(model_folder, sources, records):
    """Per setting, how many kept examples the folder decodes to the same ids when loaded as
    from_pretrained does by default (float16 weights computed in float16), as 'n of kept'; None
    unless the folder's weights are float16."""
    model = MarianMTModel.from_pretrained(model_folder).eval()
    if model.dtype != torch.float16:
        return None
    agree = {}
    for r in records:
        same = sum(same_ids(e['outputs'], generate(model, [sources[e['source']]], r['kwargs'])[0], e['ties'])
                   for e in r['examples'])
        agree[r['name']] = f"{same} of {len(r['examples'])}"
    return agree


def summary(expected, folder):
    lines = [f"{expected['case']}: {len(expected['sources'])} sources, "
             f"{sum(f.stat().st_size for f in folder.iterdir())} bytes"]
    for r in expected['settings']:
        lengths = sorted({o['length'] for e in r['examples'] for o in e['outputs']})
        natural = sum(e['outputs'][0]['eos'] and e['outputs'][0]['length'] < expected_limit(expected, r)
                      for e in r['examples'])
        lines.append(f"  {r['name']}: {len(r['examples'])} kept, dropped {r['dropped']}, best ends by itself "
                     f"{natural}, lengths {lengths}")
    lines.append(f"  checks {expected['checks']}")
    return '\n'.join(lines)


def expected_limit(expected, setting):
    new = setting['kwargs'].get('max_new_tokens')
    return new if new is not None else expected['generation_config']['max_length'] - 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--case', action='append', help='only this case (repeatable)')
    ap.add_argument('--folder', type=Path, help='record this trained folder (with a heldout.json as '
                    'train_marian_demo.py writes it) as the one --case, with the parameters of the FOLDER_CASES '
                    'entry of that name if there is one, else FOLDER_DEFAULTS')
    ap.add_argument('--out', type=Path, default=REPO / 'test' / 'fixtures' / 'generation')
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.folder:
        if not args.case or len(args.case) != 1:
            ap.error('--folder records one case: give its name with --case')
        name = args.case[0]
        known = next((c for c in FOLDER_CASES if c['name'] == name), None)
        case = dict(known or dict(FOLDER_DEFAULTS, name=name, about=f'The trained folder {args.folder}.'),
                    folder=args.folder.resolve())
        print(summary(*make_folder_case(case, args.out)), flush=True)
        return
    for case in CASES:
        if not args.case or case['name'] in args.case:
            print(summary(*make_case(case, args.out)), flush=True)
    for case in FOLDER_CASES:
        if not args.case or case['name'] in args.case:
            print(summary(*make_folder_case(case, args.out)), flush=True)


if __name__ == '__main__':
    sys.exit(main())
