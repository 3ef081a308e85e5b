"""The model of shared/spec/model-format.md in PyTorch, shared by the scripts in tools/.

One definition of the translation tutorial's Seq2SeqTransformer (token embeddings, positions,
torch.nn.Transformer itself, generator) built from the config.json fields; the paper's sinusoid;
safetensors written and read by hand (there is no safetensors package here); the spec's greedy
decoding. The scripts run as /usr/bin/python3 tools/<script>.py, so `from seq2seq import ...`
finds this file.

Sequence-first like the tutorial (batch_first False, which also keeps torch off its nested-tensor
fast path): ids are [S, B] int64, activations [S, B, d_model].
"""

import json
import math
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# The config.json fields of the spec, in its order.
CONFIG_FIELDS = ('d_model', 'nhead', 'num_encoder_layers', 'num_decoder_layers', 'dim_feedforward',
                 'activation', 'norm_first', 'layer_norm_eps', 'final_norm', 'scale_embedding',
                 'src_vocab_size', 'tgt_vocab_size', 'max_len', 'pad_id', 'bos_id', 'eos_id')


def sinusoid(rows, d_model, like_tutorial=False):
    """The paper's PE [rows, d_model] float32: sin on even columns, cos on odd ones.

    By default each value is computed in float64 and rounded once. like_tutorial computes it as
    the PyTorch tutorial does, in float32 from exp(-2i log(10000) / d_model) (even d_model only):
    that differs in the last bits, and the bench and demo models store that table."""
    if like_tutorial:
        den = torch.exp(-torch.arange(0, d_model, 2) * math.log(10000) / d_model)
        pos = torch.arange(rows).reshape(rows, 1)
        pe = torch.zeros(rows, d_model)
        pe[:, 0::2] = torch.sin(pos * den)
        pe[:, 1::2] = torch.cos(pos * den)
        return pe
    pos = np.arange(rows, dtype=np.float64)[:, None]
    col = np.arange(d_model)
    angle = pos / np.power(10000.0, (col - col % 2) / d_model)  # 2i / d_model for columns 2i, 2i+1
    pe = np.where(col % 2 == 0, np.sin(angle), np.cos(angle))
    return torch.from_numpy(pe.astype(np.float32))


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------

class TokenEmbedding(nn.Module):
    """embedding.weight [vocab, d_model]; ids [S, B] -> [S, B, d_model], times sqrt(d_model)
    when scale_embedding."""

    def __init__(self, vocab, d_model, scale, init_std=None):
        super().__init__()
        self.embedding = nn.Embedding(vocab, d_model)
        if init_std is not None:
            nn.init.normal_(self.embedding.weight, std=init_std)
        self.scale = math.sqrt(d_model) if scale else 1.0

    def forward(self, ids):
        return self.embedding(ids) * self.scale


class PositionalEncoding(nn.Module):
    """pos_embedding [P, 1, d] or [P, d]: a stored buffer, or a computed one left out of the
    state dict."""

    def __init__(self, table, stored):
        super().__init__()
        self.register_buffer('pos_embedding', table, persistent=stored)

    def forward(self, x):  # x [S, B, d]
        pe = self.pos_embedding[:x.size(0)]
        return x + (pe if pe.dim() == 3 else pe.unsqueeze(1))


class TiedGenerator(nn.Module):
    """The tgt embedding matrix as output projection; `bias` is generator.bias when present."""

    def __init__(self, vocab, bias):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(vocab)) if bias else None

    def forward(self, x, weight):
        return F.linear(x, weight, self.bias)


def build_transformer(config):
    """torch.nn.Transformer with the config's layers, without dropout; final_norm false leaves
    out transformer.encoder.norm and transformer.decoder.norm."""
    c = config
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
    """The tutorial's model; its state dict is the spec's tensors.

    config: the config.json fields (other keys are ignored).
    positions: the stored positional_encoding.pos_embedding, [P, d_model] or [P, 1, d_model];
        None computes the sinusoid for max_len positions and leaves it out of the state dict.
    generator: 'linear' (generator.weight) or 'tied' (the tgt embedding matrix projects).
    generator_bias: whether generator.bias exists (absent means zero).
    embedding_std: draws each token embedding from N(0, std) when it is made, instead of
        nn.Embedding's N(0, 1).
    """

    def __init__(self, config, positions=None, generator='linear', generator_bias=True,
                 embedding_std=None):
        super().__init__()
        missing = [k for k in CONFIG_FIELDS if k not in config]
        if missing:
            raise ValueError(f'config lacks {missing}')
        self.config = c = dict(config)
        d = c['d_model']
        # The tutorial's order: it sets the state dict's order and the order of torch's random
        # draws while the modules initialise themselves.
        self.transformer = build_transformer(c)
        self.tied = generator == 'tied'
        if self.tied:
            self.generator = TiedGenerator(c['tgt_vocab_size'], generator_bias)
        else:
            self.generator = nn.Linear(d, c['tgt_vocab_size'], bias=generator_bias)
        self.src_tok_emb = TokenEmbedding(c['src_vocab_size'], d, c['scale_embedding'], embedding_std)
        self.tgt_tok_emb = TokenEmbedding(c['tgt_vocab_size'], d, c['scale_embedding'], embedding_std)
        if positions is None:
            self.positional_encoding = PositionalEncoding(sinusoid(c['max_len'], d), stored=False)
        else:
            self.positional_encoding = PositionalEncoding(positions, stored=True)

    def embed_src(self, src):
        return self.positional_encoding(self.src_tok_emb(src))

    def embed_tgt(self, tgt):
        return self.positional_encoding(self.tgt_tok_emb(tgt))

    def project(self, x):  # [..., d_model] -> [..., tgt_vocab_size]
        if self.tied:
            return self.generator(x, self.tgt_tok_emb.embedding.weight)
        return self.generator(x)

    def src_padding(self, src):  # src [S, B] -> [B, S], True where masked out
        return (src == self.config['pad_id']).T

    def causal_mask(self, n):  # [n, n]: -inf above the diagonal, in the model's dtype
        dtype = self.tgt_tok_emb.embedding.weight.dtype
        return nn.Transformer.generate_square_subsequent_mask(n).to(dtype)

    def forward(self, src, tgt, pad_mask=True):
        """src [S, B], tgt [T, B] -> logits [T, B, tgt_vocab_size] through nn.Transformer itself.
        pad_mask False leaves source pads unmasked."""
        pad = self.src_padding(src) if pad_mask else None
        out = self.transformer(self.embed_src(src), self.embed_tgt(tgt),
                               tgt_mask=self.causal_mask(tgt.size(0)),
                               src_key_padding_mask=pad, memory_key_padding_mask=pad)
        return self.project(out)

    def encode(self, src, pad_mask=True):  # src [S, B] -> memory [S, B, d_model]
        pad = self.src_padding(src) if pad_mask else None
        return self.transformer.encoder(self.embed_src(src), src_key_padding_mask=pad)

    def decode(self, tgt, memory, src):  # tgt [T, B], memory of src -> logits [T, B, tgt_vocab_size]
        out = self.transformer.decoder(self.embed_tgt(tgt), memory, tgt_mask=self.causal_mask(tgt.size(0)),
                                       memory_key_padding_mask=self.src_padding(src))
        return self.project(out)


# ---------------------------------------------------------------------------------------------
# Greedy decoding, as the spec says
# ---------------------------------------------------------------------------------------------

def top_two(row):
    """(argmax with the lowest id winning ties, top-1 minus top-2 value) of logits [V]."""
    row = row.detach().double().numpy()
    best = int(np.argmax(row))  # numpy returns the first maximum
    return best, float(row[best] - np.delete(row, best).max())


def greedy(next_logits, config, max_new_tokens):
    """Start from [bos_id], append the argmax until eos_id or max_new_tokens tokens.
    next_logits(ys) gives the logits [V] of the last position of the id list ys.
    Returns (ids without the leading bos and a final eos, stopped_by_eos, the smallest top-1
    minus top-2 margin over the steps)."""
    ys, margin = [config['bos_id']], math.inf
    for _ in range(max_new_tokens):
        token, m = top_two(next_logits(ys))
        ys.append(token)
        margin = min(margin, m)
        if token == config['eos_id']:
            break
    ids = ys[1:]
    stopped = bool(ids) and ids[-1] == config['eos_id']
    return (ids[:-1] if stopped else ids), stopped, margin


# ---------------------------------------------------------------------------------------------
# safetensors, by hand
# ---------------------------------------------------------------------------------------------

def _float32(t):
    """A torch tensor or array as a C-contiguous little-endian float32 ndarray."""
    if torch.is_tensor(t):
        t = t.detach().to(torch.float32).contiguous().numpy()
    return np.ascontiguousarray(t, dtype='<f4')


def safetensors_bytes(tensors, metadata=None, reverse_data=False):
    """tensors: {name: torch tensor or ndarray}, in the header's order, stored as F32.
    Layout: u64 little-endian header length, the JSON header (optional __metadata__ first)
    padded with spaces to a multiple of 8, then the data back to back in header order (or its
    reverse), no holes, no trailing bytes."""
    arrays = {name: _float32(t) for name, t in tensors.items()}
    order = list(arrays)[::-1] if reverse_data else list(arrays)
    offsets, at = {}, 0
    for name in order:
        offsets[name] = [at, at + arrays[name].nbytes]
        at += arrays[name].nbytes
    header = {'__metadata__': metadata} if metadata is not None else {}
    for name, a in arrays.items():
        header[name] = {'dtype': 'F32', 'shape': list(a.shape), 'data_offsets': offsets[name]}
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    return struct.pack('<Q', len(text)) + text + b''.join(arrays[name].tobytes() for name in order)


def write_safetensors(tensors, path, metadata=None, reverse_data=False):
    """Writes tensors to path, in the argument order of safetensors.torch.save_file."""
    Path(path).write_bytes(safetensors_bytes(tensors, metadata, reverse_data))


def tokenizer_json(src_vocab, tgt_vocab, pad_id, bos_id, eos_id, unk_id=None, src_add_bos=False, src_add_eos=True):
    """tokenizer.json of a character-level model: each vocabulary a list of strings, one
    character per entry except at the special ids (pad, bos, eos and unk, shared by both, as
    the tutorial's build_vocab_from_iterator(specials=...) makes them)."""
    for name, vocab in (('src_vocab', src_vocab), ('tgt_vocab', tgt_vocab)):
        specials = {pad_id, bos_id, eos_id} | ({unk_id} if unk_id is not None and unk_id < len(vocab) else set())
        for i, entry in enumerate(vocab):
            if i not in specials and len(entry) != 1:
                raise ValueError(f'{name}[{i}] is {entry!r}: a character-level tokenizer has one character per entry')
    return {'type': 'chars', 'src_vocab': list(src_vocab), 'tgt_vocab': list(tgt_vocab), 'pad_id': pad_id,
            'bos_id': bos_id, 'eos_id': eos_id, 'unk_id': unk_id, 'src_add_bos': src_add_bos, 'src_add_eos': src_add_eos}


def save_folder(folder, state_dict, config, src_vocab=None, tgt_vocab=None, unk_id=None,
                src_add_bos=False, src_add_eos=True):
    """Writes a wasmformer model folder: config.json (the spec's fields, checked), the state dict
    as model.safetensors (float32), and, given the vocabularies (lists of strings, such as a
    torchtext vocab's get_itos()), tokenizer.json."""
    missing = [f for f in CONFIG_FIELDS if f not in config]
    if missing:
        raise ValueError(f'config lacks {", ".join(missing)}')
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_safetensors(state_dict, folder / 'model.safetensors')
    (folder / 'config.json').write_text(json.dumps(config, indent=2) + '\n')
    if src_vocab is not None or tgt_vocab is not None:
        tokenizer = tokenizer_json(src_vocab, tgt_vocab, config['pad_id'], config['bos_id'], config['eos_id'],
                                   unk_id, src_add_bos, src_add_eos)
        (folder / 'tokenizer.json').write_text(json.dumps(tokenizer, indent=2, ensure_ascii=False) + '\n')


def read_safetensors(source):
    """Bytes or a path -> {name: float32 ndarray} in header order (__metadata__ dropped).
    Strict as the spec asks of the loader: F32 only, sizes that match the shapes, and data
    covered exactly once by the tensors."""
    blob = source if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
    (n,) = struct.unpack('<Q', blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    header.pop('__metadata__', None)
    at = 0
    for start, end, name in sorted((*v['data_offsets'], k) for k, v in header.items()):
        if start != at:
            raise ValueError(f'{name}: hole or overlap at byte {at} of the data')
        at = end
    if at != len(data):
        raise ValueError(f'{len(data) - at} data bytes that no tensor claims')
    out = {}
    for name, v in header.items():
        start, end = v['data_offsets']
        if v['dtype'] != 'F32' or end - start != 4 * int(np.prod(v['shape'], dtype=np.int64)):
            raise ValueError(f'{name}: {v["dtype"]} {v["shape"]} in {end - start} bytes')
        out[name] = np.frombuffer(data[start:end], dtype='<f4').reshape(v['shape']).copy()
    return out
