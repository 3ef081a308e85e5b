"""Trains the demo model that ships with wasmformer: numbers in digits -> English words.

    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread \
        /usr/bin/python3 tools/train_demo.py [--steps N] [--out models/numbers]

A character-level encoder-decoder laid out exactly like PyTorch's translation tutorial
(tools/seq2seq.py's Seq2SeqTransformer: src_tok_emb, tgt_tok_emb, positional_encoding,
transformer, generator), so its state dict is the format of shared/spec/model-format.md. The
script trains it, writes config.json, model.safetensors (by hand: no safetensors package here),
tokenizer.json, then reloads the exported weights into a fresh model and writes, from that
model's greedy decoding, heldout.json (numbers never seen in training) and samples.json (a few
hand-picked inputs).

Conventions (models/numbers/README.md): 0..999,999; input digits without leading zeros,
optionally with a comma before the last three digits; output American English, lowercase,
no "and", hyphens in 21..99 ("twenty-one"), "one hundred", "one thousand".
"""

import argparse
import json
import math
import os
import random
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before torch loads OpenBLAS: no helper threads

import torch
from torch import nn

from seq2seq import Seq2SeqTransformer, greedy, read_safetensors, save_folder, sinusoid

SEED = 1234
PAD, BOS, EOS = 0, 1, 2
SPECIALS = ["<pad>", "<bos>", "<eos>"]

ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen").split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()

CONFIG = dict(
    d_model=128,
    nhead=4,
    num_encoder_layers=2,
    num_decoder_layers=2,
    dim_feedforward=512,
    activation="relu",
    norm_first=False,
    layer_norm_eps=1e-5,
    final_norm=True,
    scale_embedding=True,
    max_len=72,  # longest target is 64 chars + eos; longest source 7 chars + eos
    pad_id=PAD,
    bos_id=BOS,
    eos_id=EOS,
)


# ---------------------------------------------------------------- the task

def words_below_100(n):
    if n < 20:
        return ONES[n]
    return TENS[n // 10] + ("" if n % 10 == 0 else "-" + ONES[n % 10])


def words_below_1000(n):
    hundreds, rest = divmod(n, 100)
    parts = [ONES[hundreds] + " hundred"] if hundreds else []
    if rest or not hundreds:
        parts.append(words_below_100(rest))
    return " ".join(parts)


def number_to_words(n):
    """4019 -> 'four thousand nineteen'; 0 <= n <= 999,999."""
    thousands, rest = divmod(n, 1000)
    if not thousands:
        return words_below_1000(rest)
    return words_below_1000(thousands) + " thousand" + ("" if rest == 0 else " " + words_below_1000(rest))


def digits(n, comma):
    """4019 -> '4019' or '4,019' (a comma only when n >= 1000 and asked for)."""
    return f"{n:,}" if comma else str(n)


SRC_VOCAB = SPECIALS + list("0123456789,")
TGT_VOCAB = SPECIALS + sorted(set("".join(ONES + TENS[2:] + ["hundred", "thousand"])) | {" ", "-"})
SRC_INDEX = {c: i for i, c in enumerate(SRC_VOCAB)}
TGT_INDEX = {c: i for i, c in enumerate(TGT_VOCAB)}


def encode_source(text):
    """Source = the characters, then eos (no bos): as tokenizer.json says."""
    return [SRC_INDEX[c] for c in text] + [EOS]


def encode_target(text):
    return [TGT_INDEX[c] for c in text]


def decode_target(ids):
    return "".join(TGT_VOCAB[i] for i in ids)


def random_number(rng, n_digits=None):
    """A number with n_digits digits (by default uniform in 1..6, so short numbers are seen as
    often as long ones). Three times in ten its digits are zero half the time: round numbers
    such as 300,000 or 10,011 are the hard cases, rare among uniform draws."""
    n_digits = n_digits or rng.randint(1, 6)
    zero_share = 0.5 if rng.random() < 0.3 else 0.0
    first = rng.randint(0 if n_digits == 1 else 1, 9)
    rest = [0 if rng.random() < zero_share else rng.randint(0, 9) for _ in range(n_digits - 1)]
    return int(str(first) + "".join(map(str, rest)))


def heldout_numbers(rng):
    """1000 distinct numbers, drawn as training draws them, never trained on: 100 with 3 digits
    and 300 each with 4, 5 and 6. None below 100: 0..99 are the atoms the rest is built from."""
    picks = set()
    for n_digits, count in ((3, 100), (4, 300), (5, 300), (6, 300)):
        chosen = set()
        while len(chosen) < count:
            chosen.add(random_number(rng, n_digits))
        picks |= chosen
    return sorted(picks)


# ---------------------------------------------------------------- the model (tools/seq2seq.py)

def new_model(cfg):
    """The tutorial's model with its float32 sinusoid buffer [max_len, 1, d_model]. Token
    embeddings start with std 1/sqrt(d_model), so scaled embeddings are O(1) like the positions;
    nn.Embedding's default N(0, 1) times sqrt(d_model) would drown them, and position is what
    this task is about."""
    positions = sinusoid(cfg["max_len"], cfg["d_model"], like_tutorial=True).unsqueeze(1)
    return Seq2SeqTransformer(cfg, positions=positions, embedding_std=cfg["d_model"] ** -0.5)


def pad_batch(seqs):
    """A list of id lists -> a (max length, batch) tensor padded with PAD (seq-first)."""
    out = torch.full((max(map(len, seqs)), len(seqs)), PAD, dtype=torch.long)
    for j, s in enumerate(seqs):
        out[: len(s), j] = torch.tensor(s)
    return out


def batches(rng, size, excluded, pool=8):
    """Endless training batches of (src, tgt) tensors. Draws pool * size examples at a time and
    cuts them, sorted by target length, into pool batches served in random order: a batch then
    holds targets of similar length and wastes little time on padding."""
    while True:
        examples = []
        while len(examples) < pool * size:
            n = random_number(rng)
            if n in excluded:
                continue
            src = encode_source(digits(n, rng.random() < 0.5))
            examples.append((src, [BOS] + encode_target(number_to_words(n)) + [EOS]))
        examples.sort(key=lambda e: len(e[1]))
        chunks = [examples[i: i + size] for i in range(0, len(examples), size)]
        rng.shuffle(chunks)
        for chunk in chunks:
            yield pad_batch([s for s, _ in chunk]), pad_batch([t for _, t in chunk])


@torch.no_grad()
def teacher_forced_exact(model, pairs):
    """Share of (source, target) pairs whose every teacher-forced argmax is right, eos included:
    exactly the pairs greedy decoding gets right, at the cost of one batched forward pass."""
    was_training = model.training
    model.eval()
    src = pad_batch([encode_source(t) for t, _ in pairs])
    tgt = pad_batch([[BOS] + encode_target(number_to_words(n)) + [EOS] for _, n in pairs])
    pred = model(src, tgt[:-1]).argmax(-1)
    gold = tgt[1:]
    ok = ((pred == gold) | (gold == PAD)).all(0)
    model.train(was_training)
    return ok.float().mean().item()


def train(model, args, excluded, probe):
    rng = random.Random(SEED + 1)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.98), eps=1e-9)
    warmup = min(300, args.steps // 10)

    def lr_factor(step):  # linear warmup, then cosine decay to zero
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, args.steps - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    loss_fn = nn.CrossEntropyLoss(ignore_index=PAD)
    model.train()
    data = batches(rng, args.batch, excluded)
    start = time.time()
    for step in range(args.steps):
        src, tgt = next(data)
        logits = model(src, tgt[:-1])
        loss = loss_fn(logits.reshape(-1, logits.size(-1)), tgt[1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == args.steps - 1:
            probe_text = ""
            if step % 250 == 0 or step == args.steps - 1:
                probe_text = f"  held-out exact (teacher-forced) {teacher_forced_exact(model, probe):.1%}"
            print(f"step {step:5d}  loss {loss.item():.4f}  lr {sched.get_last_lr()[0]:.2e}  "
                  f"{time.time() - start:6.0f} s{probe_text}", flush=True)
    return time.time() - start


# ---------------------------------------------------------------- export

# ---------------------------------------------------------------- greedy decoding (the spec's)

@torch.no_grad()
def greedy_ids(model, src_ids, max_new_tokens):
    """One source, no padding: the encoder once, then the decoder over the whole prefix per
    step. Returns the generated ids without bos and without the final eos."""
    src = torch.tensor(src_ids).unsqueeze(1)
    memory = model.encode(src)
    return greedy(lambda ys: model.decode(torch.tensor(ys).unsqueeze(1), memory, src)[-1, 0],
                  model.config, max_new_tokens)[0]


def decode_items(model, texts_and_numbers, max_len):
    items = []
    for text, n in texts_and_numbers:
        src_ids = encode_source(text)
        ids = greedy_ids(model, src_ids, max_len)
        items.append({"text": text, "src_ids": src_ids, "expected": number_to_words(n),
                      "greedy_ids": ids, "greedy_text": decode_target(ids)})
    return items


def write_items_json(path, meta, items):
    """One item per line: readable and diffable without being huge."""
    with open(path, "w") as f:
        f.write("{\n")
        for k, v in meta.items():
            f.write(f"  {json.dumps(k)}: {json.dumps(v)},\n")
        f.write('  "items": [\n')
        f.write(",\n".join("    " + json.dumps(it, separators=(", ", ": ")) for it in items))
        f.write("\n  ]\n}\n")


SAMPLES = ["0", "7", "13", "21", "40", "99", "100", "101", "115", "999", "1000", "1,001", "4019", "4,019",
           "12,345", "20,000", "90210", "100000", "101,010", "777,777", "999999"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "models", "numbers"))
    args = p.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    cfg = dict(CONFIG, src_vocab_size=len(SRC_VOCAB), tgt_vocab_size=len(TGT_VOCAB))

    rng = random.Random(SEED)
    held = heldout_numbers(rng)
    held_texts = [(digits(n, n >= 1000 and rng.random() < 0.5), n) for n in held]

    model = new_model(cfg)
    seconds = train(model, args, excluded=set(held), probe=held_texts[::4])

    save_folder(args.out, model.state_dict(), cfg, SRC_VOCAB, TGT_VOCAB)
    weights = os.path.join(args.out, "model.safetensors")

    # Everything below comes from the exported file, so a JS engine can match it id for id.
    fresh = new_model(cfg)
    exported = {name: torch.from_numpy(a) for name, a in read_safetensors(weights).items()}
    fresh.load_state_dict(exported, strict=True)
    fresh.eval()
    t0 = time.time()
    items = decode_items(fresh, held_texts, cfg["max_len"])
    exact = sum(it["greedy_text"] == it["expected"] for it in items)
    print(f"held-out exact match: {exact}/{len(items)} = {exact / len(items):.2%}  "
          f"(decoding {time.time() - t0:.0f} s)")
    for it in items:
        if it["greedy_text"] != it["expected"]:
            print(f"  {it['text']!r}: got {it['greedy_text']!r}, want {it['expected']!r}")
    meta = {"description": "numbers never seen in training; greedy_ids from PyTorch greedy decoding "
                           "of model.safetensors (max_new_tokens = max_len)",
            "exact_match": exact, "count": len(items), "train_steps": args.steps,
            "train_batch": args.batch, "train_seconds": round(seconds)}
    write_items_json(os.path.join(args.out, "heldout.json"), meta, items)

    samples = decode_items(fresh, [(t, int(t.replace(",", ""))) for t in SAMPLES], cfg["max_len"])
    write_items_json(os.path.join(args.out, "samples.json"),
                     {"description": "hand-picked inputs (some seen in training) with PyTorch greedy ids"},
                     samples)
    print(f"training {seconds:.0f} s for {args.steps} steps of {args.batch}")


if __name__ == "__main__":
    main()
