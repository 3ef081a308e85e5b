#!/usr/bin/python3
"""PyTorch's own attention weights, per decoder layer and head, for wasmformer's AttentionMaps.

Loads a committed fixture (test/fixtures/<case>/: config.json and model.safetensors, made by
make_fixtures.py), takes its first greedy run that stopped on eos, and runs the decoder over
[bos] + ids (every step of that decoding, the one that produced eos included) with each
nn.MultiheadAttention asked for need_weights=True, average_attn_weights=False. Writes
test/fixtures/<case>/attention.json:

  src, tgt                   the source and the decoder input ([bos] + ids)
  self[layer][head]          [len(tgt) * len(tgt)] row-major, masked self-attention (zeros above
                             the diagonal), float32 values as the shortest round-tripping decimal
  cross[layer][head]         [len(tgt) * len(src)] row-major, cross-attention over the source

Usage: /usr/bin/python3 tools/make_attention_fixture.py [--case source_padding]
"""

import argparse
import json
from pathlib import Path

import torch

from make_fixtures import f32_number, to_json
from seq2seq import Seq2SeqTransformer, read_safetensors

REPO = Path(__file__).resolve().parent.parent


def load_fixture(folder):
    config = json.loads((folder / 'config.json').read_text())
    tensors = {k: torch.from_numpy(v) for k, v in read_safetensors(folder / 'model.safetensors').items()}
    positions = tensors.get('positional_encoding.pos_embedding')
    generator = 'linear' if 'generator.weight' in tensors else 'tied'
    model = Seq2SeqTransformer(config, positions=positions, generator=generator,
                               generator_bias='generator.bias' in tensors)
    model.load_state_dict(tensors, strict=True)
    return model.eval(), config


def capture_weights(attention, store):
    """Makes an nn.MultiheadAttention hand its per-head weights [B, H, T, S] to store."""
    original = attention.forward

    def forward(*args, **kwargs):
        kwargs.update(need_weights=True, average_attn_weights=False)
        out, weights = original(*args, **kwargs)
        store.append(weights)
        return out, weights
    attention.forward = forward


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--case', default='source_padding')
    args = ap.parse_args()
    torch.set_num_threads(1)
    folder = REPO / 'test' / 'fixtures' / args.case
    model, config = load_fixture(folder)
    run = next(g for g in json.loads((folder / 'expected.json').read_text())['greedy'] if g['stopped_by_eos'])
    src, tgt = run['src'], [config['bos_id']] + run['ids']
    layers = model.transformer.decoder.layers
    stores = [([], []) for _ in layers]
    for layer, (self_store, cross_store) in zip(layers, stores):
        capture_weights(layer.self_attn, self_store)
        capture_weights(layer.multihead_attn, cross_store)
    with torch.no_grad():
        s = torch.tensor(src).unsqueeze(1)
        t = torch.tensor(tgt).unsqueeze(1)
        logits = model.decode(t, model.encode(s), s)
    # The run's ids are the argmax of these logits, the last one being eos: the same decoding.
    assert logits[:, 0].argmax(-1).tolist() == run['ids'] + [config['eos_id']]

    def per_head(weights):  # [1, H, T, S] -> [H][T * S]
        return [[f32_number(v) for v in head.reshape(-1).tolist()] for head in weights[0]]
    out = dict(
        case=args.case, src=src, tgt=tgt,
        self=[per_head(s[0]) for s, _ in stores],
        cross=[per_head(c[0]) for _, c in stores],
        torch_version=torch.__version__.split('+')[0],
    )
    (folder / 'attention.json').write_text(to_json(out) + '\n')
    print(f'wrote {folder / "attention.json"}: {len(layers)} layers, {model.transformer.nhead} heads, '
          f'{len(tgt)} steps over {len(src)} source positions')


if __name__ == '__main__':
    main()
