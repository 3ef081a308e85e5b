#!/usr/bin/env python3
"""Hugging Face Marian fixtures for wasmformer's model tests, made by transformers itself.

Builds small random-weight MarianMTModel folders laid out exactly as the hub's are (config.json,
generation_config.json, model.safetensors) in every variant the loader must read: swish, gelu
and relu; scaled embeddings or not; positions stored or computed; the embedding matrix stored
once (model.shared), under every name it is tied to, or as separate source and target
vocabularies; an untied lm_head; float32, float16 and bfloat16 weights; encoder and decoder of
different widths and head counts; eos not 0; multi-token bad_words_ids; pytorch_model.bin (torch.save, tied tensors in one
storage); generation fields in
config.json only (no generation_config.json, as older opus-mt folders). Then it loads each
folder back with MarianMTModel.from_pretrained (so the reference reads the very files the tests
read) and writes test/fixtures/marian/<case>/expected.json:

  forward: [{src, decoder_input_ids, logits}]   teacher-forced, logits row-major
           [len(decoder_input_ids) * vocab], float32 as the shortest round-tripping decimal
  greedy:  [{src, max_new_tokens, ids, stopped_by_eos, min_margin}]   generate(num_beams=1,
           do_sample=False, max_new_tokens=...) with the folder's generation config
           (max_new_tokens null: its max_length); ids without the start token and without a
           final eos; min_margin the smallest top-1 minus top-2 processed score of the run
  parameters: model.num_parameters()

Weights are non-degenerate: xavier-uniform matrices, LayerNorms away from identity, a non-zero
final_logits_bias, and sources picked so that every greedy step keeps a margin of at least
MIN_MARGIN (the ids do not hinge on rounding). Seeded, single-threaded.

Run with the venv that has transformers (python3 -m venv .venv && .venv/bin/pip install
--retries 0 transformers sentencepiece torch):
  .venv/bin/python tools/make_marian_fixtures.py [--case NAME] [--out DIR]
"""

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import GenerationConfig, MarianConfig, MarianMTModel
from transformers.utils import logging

logging.set_verbosity_error()  # max_new_tokens beside the folder's max_length is meant here

MIN_MARGIN = 2e-3
REPO = Path(__file__).resolve().parent.parent

BASE = dict(
    d_model=24, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
    encoder_ffn_dim=40, decoder_ffn_dim=40, activation_function='swish', scale_embedding=True,
    vocab_size=61, max_position_embeddings=24, pad_token_id=60, eos_token_id=0, decoder_start_token_id=60,
    forced_eos_token_id=0, share_encoder_decoder_embeddings=True, tie_word_embeddings=True,
)
GENERATION = dict(bad_words_ids=[[60]], max_length=16, num_beams=4)

# Besides MarianConfig fields and generation fields, each case says: positions ('stored' or
# 'computed'), store ('shared': model.shared only; 'every': under every tied name; 'split':
# separate encoder and decoder embeddings), dtype, generation_in ('file' or 'config'), seed.
CASES = [
    dict(name='swish_scaled_stored', about='opus-mt\'s own shape in small: swish, scaled embeddings, '
         'stored positions, one shared matrix (model.shared.weight only), float32.',
         config={}, generation={}, positions='stored', store='shared', dtype=torch.float32, generation_in='file', seed=1),
    dict(name='gelu_computed_fp16', about='gelu (exact), unscaled embeddings, positions computed '
         '(Marian\'s sines-then-cosines sinusoid), float16 weights as the tc-big models ship.',
         config=dict(activation_function='gelu', scale_embedding=False), generation={}, positions='computed',
         store='shared', dtype=torch.float16, generation_in='file', seed=2),
    dict(name='relu_separate_vocabs', about='relu, separate source and target vocabularies '
         '(share_encoder_decoder_embeddings false, decoder_vocab_size 47), lm_head tied to the decoder '
         'embedding, stored positions.',
         config=dict(activation_function='relu', share_encoder_decoder_embeddings=False, decoder_vocab_size=47,
                     pad_token_id=46, decoder_start_token_id=46), generation=dict(bad_words_ids=[[46]]),
         positions='stored', store='split', dtype=torch.float32, generation_in='file', seed=3),
    dict(name='untied_lm_head_bf16', about='tie_word_embeddings false: transformers 5 then ties nothing, '
         'so model.shared, both embed_tokens and lm_head are four matrices (shared unused); bfloat16 '
         'weights; computed positions.',
         config=dict(tie_word_embeddings=False), generation={}, positions='computed', store='shared',
         dtype=torch.bfloat16, generation_in='file', seed=4),
    dict(name='every_name_odd_widths', about='The tied matrix under all four names (model.shared, both '
         'embed_tokens, lm_head) as old pytorch_model.bin exports hold it; d_model 20 with 4 encoder and '
         '5 decoder heads, FFN 36 and 28, 1 encoder and 3 decoder layers; eos 3 (not 0); bad_words_ids '
         'with a two-token sequence.',
         config=dict(d_model=20, encoder_attention_heads=4, decoder_attention_heads=5, encoder_ffn_dim=36,
                     decoder_ffn_dim=28, encoder_layers=1, decoder_layers=3, eos_token_id=3, forced_eos_token_id=3),
         generation=dict(bad_words_ids=[[60], [7, 8], [11, 12, 13]]), positions='stored', store='every',
         dtype=torch.float32, generation_in='file', seed=5),
    dict(name='pytorch_model_bin', about='pytorch_model.bin, as the hub\'s opus-mt-en-de has only that: '
         'torch.save of the state dict, the tied matrix one storage under all four names, stored positions.',
         config={}, generation={}, positions='stored', store='every', dtype=torch.float32, generation_in='file',
         seed=7, format='bin'),
    dict(name='generation_in_config', about='No generation_config.json: max_length, bad_words_ids, '
         'forced_eos_token_id and num_beams in config.json, as older opus-mt folders have them.',
         config={}, generation=dict(max_length=12), positions='computed', store='shared', dtype=torch.float32,
         generation_in='config', seed=6),
]


def marian_config(case):
    return MarianConfig(**{**BASE, **case['config']}, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)


def randomize(model, seed, eos_boost):
    """Non-degenerate weights: normal matrices far larger than transformers' init_std, norms away
    from identity, non-zero biases, a real logits bias, stored position tables random."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if 'embed_positions' in name:
                # transformers reads stored tables as they are: random values make a loader that
                # computes the sinusoid instead fail. Computed ones are never stored.
                p.copy_(torch.randn(p.shape, generator=g))
            elif name.endswith('layer_norm.weight'):
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g))
            elif p.dim() == 2:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
        model.final_logits_bias.copy_(0.5 * torch.randn(model.final_logits_bias.shape, generator=g))
        model.final_logits_bias[0, model.config.eos_token_id] += eos_boost  # some runs stop by themselves


def state_dict(model, case):
    """The tensors to store, named as the case stores its tied matrix."""
    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    tied = ['model.encoder.embed_tokens.weight', 'model.decoder.embed_tokens.weight', 'lm_head.weight']
    if not model.config.tie_word_embeddings:
        pass  # transformers 5 ties nothing then (not even model.shared to embed_tokens): all four are stored
    elif case['store'] == 'shared':
        for k in tied:
            if k != 'lm_head.weight' or model.config.tie_word_embeddings:
                sd.pop(k, None)
    elif case['store'] == 'split':
        sd.pop('model.shared.weight', None)
        if model.config.tie_word_embeddings:
            sd.pop('lm_head.weight', None)
    if case['positions'] == 'computed':
        for k in ['model.encoder.embed_positions.weight', 'model.decoder.embed_positions.weight']:
            sd.pop(k, None)
    return {k: v.to(case['dtype']) for k, v in sd.items()}


def build_model(case, eos_boost):
    """The case's MarianMTModel with its random weights (randomize), not yet saved."""
    torch.manual_seed(case['seed'])
    model = MarianMTModel(marian_config(case)).eval()
    randomize(model, case['seed'], eos_boost)
    return model


def write_folder(folder, case, eos_boost):
    save_folder(folder, case, build_model(case, eos_boost))


def save_folder(folder, case, model):
    """config.json, the generation fields (generation_config.json or config.json) and the weights
    in the case's file format and tensor names."""
    config = model.config
    gen = {**GENERATION, **case['generation']}
    gen.setdefault('bad_words_ids', [[config.pad_token_id]])
    folder.mkdir(parents=True, exist_ok=True)
    config_json = config.to_dict()
    for k in ['transformers_version', 'dtype', 'torch_dtype']:
        config_json.pop(k, None)
    fields = dict(decoder_start_token_id=config.decoder_start_token_id, eos_token_id=config.eos_token_id,
                  forced_eos_token_id=config.forced_eos_token_id, pad_token_id=config.pad_token_id, **gen)
    if case['generation_in'] == 'config':
        config_json.update(fields)
    else:
        GenerationConfig(**fields).save_pretrained(folder)
    (folder / 'config.json').write_text(json.dumps(config_json, indent=2, sort_keys=True) + '\n')
    if case.get('format') == 'bin':
        torch.save(model.state_dict(), folder / 'pytorch_model.bin')  # tied tensors share one storage
    else:
        save_file(state_dict(model, case), folder / 'model.safetensors', metadata={'format': 'pt'})


def f32(v):
    """The shortest decimal that rounds back to the float32 v."""
    x = np.float32(v)
    y = float(str(x))
    return y if np.float32(y) == x else float(x)


def greedy(model, src, max_new):
    kwargs = dict(num_beams=1, do_sample=False, output_scores=True, return_dict_in_generate=True)
    if max_new is not None:
        kwargs['max_new_tokens'] = max_new
    out = model.generate(torch.tensor([src]), **kwargs)
    seq = out.sequences[0, 1:].tolist()
    margin = math.inf
    for scores in out.scores:
        top = torch.topk(scores[0].double(), 2).values
        if torch.isfinite(top[1]):
            margin = min(margin, float(top[0] - top[1]))
    eos = model.generation_config.eos_token_id
    stopped = bool(seq) and seq[-1] == eos
    return (seq[:-1] if stopped else seq), stopped, margin


def random_source(rng, model, length):
    c = model.config
    ids = [int(i) for i in rng.integers(1, c.vocab_size - 1, size=length) if i not in (c.pad_token_id, c.eos_token_id)]
    return ids + [c.eos_token_id]  # MarianTokenizer ends every source with eos


def pick_runs(model, rng, specs):
    """A source per (length, max_new_tokens, want) whose run ends as wanted with a safe margin."""
    runs = []
    for length, max_new, want in specs:
        for _ in range(150):
            src = random_source(rng, model, length)
            ids, stopped, margin = greedy(model, src, max_new)
            limit = max_new if max_new is not None else model.generation_config.max_length - 1
            natural = stopped and len(ids) + 1 < limit  # eos chosen, not forced at the limit
            if margin >= MIN_MARGIN and ((natural and len(ids) >= 2) if want == 'eos' else not natural):
                runs.append(dict(src=src, max_new_tokens=max_new, ids=ids, stopped_by_eos=stopped, min_margin=margin))
                break
        else:
            return None
    return runs


def expected(folder, case):
    model = MarianMTModel.from_pretrained(folder, dtype=torch.float32).eval()
    rng = np.random.default_rng(case['seed'])
    vocab = model.config.decoder_vocab_size if not model.config.share_encoder_decoder_embeddings else model.config.vocab_size
    forward = []
    with torch.no_grad():
        for src_len, tgt_len in [(5, 4), (9, 7), (1, 1)]:
            src = random_source(rng, model, src_len - 1) if src_len > 1 else [model.config.eos_token_id]
            tgt = [model.config.decoder_start_token_id] + [int(i) for i in rng.integers(0, vocab, size=tgt_len - 1)]
            logits = model(input_ids=torch.tensor([src]), decoder_input_ids=torch.tensor([tgt])).logits[0]
            forward.append(dict(src=src, decoder_input_ids=tgt, logits=[f32(v) for v in logits.reshape(-1).tolist()]))
        runs = pick_runs(model, rng, [(6, 10, 'eos'), (8, 10, 'length'), (4, None, 'length')])
    if runs is None:
        return None
    return dict(case=case['name'], about=case['about'], forward=forward, greedy=runs,
                parameters=model.num_parameters(), transformers_version=__import__('transformers').__version__)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--case', action='append', help='only this case (repeatable)')
    ap.add_argument('--out', type=Path, default=REPO / 'test' / 'fixtures' / 'marian')
    args = ap.parse_args()
    torch.set_num_threads(1)
    cases = [c for c in CASES if not args.case or c['name'] in args.case]
    for case in cases:
        folder = args.out / case['name']
        for boost in np.arange(0.0, 8.0, 0.25):  # eos likelier until some run stops by itself
            shutil.rmtree(folder, ignore_errors=True)
            write_folder(folder, case, float(boost))
            exp = expected(folder, case)
            if exp is not None:
                break
        else:
            raise SystemExit(f"{case['name']}: no set of safe greedy runs")
        exp['eos_boost'] = float(boost)
        (folder / 'expected.json').write_text(json.dumps(exp, separators=(',', ':')) + '\n')
        print(f"{case['name']}: greedy {[len(g['ids']) for g in exp['greedy']]} eos {[g['stopped_by_eos'] for g in exp['greedy']]} "
              f"margin {min(g['min_margin'] for g in exp['greedy']):.3g}, {sum(f.stat().st_size for f in folder.iterdir())} bytes")


if __name__ == '__main__':
    sys.exit(main())
