"""Trains a small English -> German Marian model on the gettext catalogs Debian installs.

    /work/.venv/bin/python tools/train_marian_demo.py [--steps N] [--out models/en-de-messages]
        [--work /tmp/train_marian_demo] [--eval-limit N] [--evaluate-only]

The data are the (English msgid, German msgstr) pairs of every catalog in
/usr/share/locale/de/LC_MESSAGES/*.mo: program messages, menu items, language and country
names. The script extracts and cleans them, splits off a held-out set by a hash of the
English text, trains SentencePiece models on the training split (source.spm on English,
target.spm on German, a joint vocab.json in Marian's layout), trains a MarianMTModel from
scratch, and writes the folder as the Hugging Face hub lays out an opus-mt model, with the
weights in float16. Then it reloads that folder as float32 and writes, from the reloaded model
only, heldout.json (every held-out pair with HF's ids and greedy and beam-4 outputs),
samples.json (a dozen hand-picked held-out pairs) and eval.json (sacreBLEU and chrF against a
copy-the-source baseline). data.json says which catalogs (and package versions) were read.

Checkpoints go to --work every 250 steps; a run that stops resumes from the last one and
ends with the same weights (seeded data order, saved RNG states). --evaluate-only skips
training and redoes the evaluation files from the folder as it is.
"""

import argparse
import collections
import glob
import hashlib
import io
import itertools
import json
import math
import os
import random
import re
import struct
import subprocess
import time

import sacrebleu
import sentencepiece as spm
import torch
from transformers import GenerationConfig, MarianConfig, MarianMTModel, MarianTokenizer

SEED = 20261201
CATALOGS = "/usr/share/locale/de/LC_MESSAGES/*.mo"
HELDOUT_PER_MILLE = 25  # 2.5% of the English texts, chosen by hash
MAX_CHARS = 160  # longer entries are help screens and paragraphs: 3%, slow to train on, beyond this model
SPM_VOCAB = 4000  # per language; vocab.json is their union

MODEL = dict(
    d_model=256,
    encoder_layers=3,
    decoder_layers=3,
    encoder_attention_heads=4,
    decoder_attention_heads=4,
    encoder_ffn_dim=1024,
    decoder_ffn_dim=1024,
    activation_function="swish",
    scale_embedding=True,
    max_position_embeddings=512,
    dropout=0.1,
    attention_dropout=0.1,
    activation_dropout=0.0,
    share_encoder_decoder_embeddings=True,
    tie_word_embeddings=True,
)
GENERATION = dict(num_beams=4, max_length=512)

# Held-out English texts shown by samples.json (picked by hand from the held-out split).
SAMPLES = [
    "Directory not empty", "Invalid address", "Shuffle playlist", "Switch to workspace 3",
    '"%s" is not a directory', "Is the package %s installed?", "Connecting to %s:%d...",
    "-q, --quiet report errors only", "Cannot give description to detached HEAD",
    "The signature is probably a FORGERY.", "Spanish (Dvorak)", "Kol (Cameroon)",
    "Republic of Albania", "Zagrebačka županija",
]


# ---------------------------------------------------------------- reading the catalogs

def read_mo(path):
    """The (msgid, msgstr) byte strings of a compiled gettext catalog, in file order."""
    data = open(path, "rb").read()
    order = "<" if struct.unpack("<I", data[:4])[0] == 0x950412DE else ">"
    _revision, count, ids_at, strs_at = struct.unpack(order + "4I", data[4:20])

    def string(table, i):
        length, offset = struct.unpack(order + "2I", data[table + 8 * i: table + 8 * i + 8])
        return data[offset: offset + length]

    return [(string(ids_at, i), string(strs_at, i)) for i in range(count)]


def header_field(header, name):
    match = re.search(rf"^{name}:\s*(.*)$", header, re.M | re.I)
    return match.group(1).strip() if match else ""


def catalog_entries(path):
    """(English, German) strings of one catalog. The header (empty msgid) gives the charset;
    a context (`ctxt\\x04msgid`) is dropped, since the English text is what a translator sees;
    a plural entry gives (singular, msgstr[0]) and (plural, msgstr[1]), German's two forms;
    an empty translation (untranslated) is skipped. Fuzzy entries never reach a .mo file
    (msgfmt leaves them out), so there is nothing to detect for them."""
    raw = read_mo(path)
    header = next((t for s, t in raw if s == b""), b"").decode("ascii", "replace")
    charset = re.sub(r".*charset=", "", header_field(header, "Content-Type")) or "utf-8"
    entries = []
    for msgid, msgstr in raw:
        if not msgid or not msgstr:
            continue
        english = msgid.decode(charset).split("\x04")[-1].split("\x00")
        german = msgstr.decode(charset).split("\x00")
        if len(english) == 2 and len(german) >= 2:
            entries += [(english[0], german[0]), (english[1], german[1])]
        elif len(english) == 1:
            entries.append((english[0], german[0]))
    return entries


def owning_packages(paths):
    """{path: "package version"} from dpkg, for the record: another machine has other packages."""
    try:
        owners = subprocess.run(["dpkg-query", "-S", *paths], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return {}
    package_of = {}
    for line in owners.splitlines():
        package, _, path = line.partition(": ")
        package_of[path] = package.split(":")[0]
    names = sorted(set(package_of.values()))
    listing = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\n", *names],
                             capture_output=True, text=True).stdout
    version = dict(line.split(" ", 1) for line in listing.splitlines() if " " in line)
    return {path: f"{p} {version.get(p, '?')}" for path, p in package_of.items()}


# ---------------------------------------------------------------- cleaning

PRINTF = r"%(?:\d+\$)?[-+ #0']*(?:\d+|\*)?(?:\.(?:\d+|\*))?(?:hh|h|ll|l|L|q|j|z|t)?[diouxXeEfFgGaAcspmn%]"
PLACEHOLDER = re.compile(PRINTF + r"|%\([a-z_]+\)[sd]|\$\{[A-Za-z_]+\}|\{[A-Za-z_0-9]*\}")


def placeholders(text):
    """printf (`%s`, `%2$d`, `%m`), Python (`%(name)s`, `{name}`) and shell (`${VAR}`) slots."""
    return sorted(PLACEHOLDER.findall(text))


def squeeze_spaces(text):
    """One space for every run of whitespace, none at the ends: SentencePiece's nmt_nfkc
    normalizer does the same to newlines and tabs, so the model could never write them; a caller
    keeps a message's leading and trailing newlines itself."""
    return " ".join(text.split())


def strip_mnemonics(english, german):
    """GTK keyboard accelerators (`_Open` / `Ö_ffnen`, `Pre_vious` / `_Vorheriger`): the German
    one sits wherever its translator put it, which no model can guess, and a UI adds it back
    anyway. A pair counts as one when each side has exactly one underscore, followed by a letter
    or digit in the English, and the English word around it is not copied into the German (as
    identifiers such as `in_range` are). (`&File` accelerators do not occur in these catalogs:
    every `&` here is an entity or `AT&T`.)"""
    word = re.search(r"\w*_[^\W_]\w*", english)
    if english.count("_") != 1 or german.count("_") != 1 or not word or word.group() in german:
        return english, german
    return english.replace("_", ""), german.replace("_", "")


def rejection(english, german):
    """Why a cleaned pair is not used, or None."""
    if english == german:
        return "identical in both languages (names, codes, untranslated)"
    if len(re.findall(r"[^\W\d_]", PLACEHOLDER.sub("", english))) < 2:
        return "no words outside placeholders"
    if max(len(english), len(german)) > MAX_CHARS:
        return f"longer than {MAX_CHARS} characters"
    if max(len(english), len(german)) > 20 and max(len(english), len(german)) > 3 * min(len(english), len(german)):
        return "one side over 3 times longer than the other"
    return None


def extract_pairs(paths):
    """Cleaned, deduplicated (English, German) pairs, plus per-catalog counts and the reasons
    pairs were dropped. An English text translated differently in several catalogs keeps its
    most frequent German (ties: the first catalog in name order)."""
    translations = collections.defaultdict(collections.Counter)
    first_seen = {}
    dropped = collections.Counter()
    per_catalog = {}
    for path in paths:
        entries = catalog_entries(path)
        kept = 0
        for english, german in entries:
            english, german = squeeze_spaces(english), squeeze_spaces(german)
            if (english, german) != strip_mnemonics(english, german):
                english, german = strip_mnemonics(english, german)
                dropped["(kept) accelerator underscores removed"] += 1
            reason = rejection(english, german)
            if reason:
                dropped[reason] += 1
                continue
            kept += 1
            translations[english][german] += 1
            first_seen.setdefault((english, german), len(first_seen))
        per_catalog[path] = {"entries": len(entries), "kept": kept}
    pairs = [(english, min(counts, key=lambda g: (-counts[g], first_seen[(english, g)])))
             for english, counts in translations.items()]
    return sorted(pairs), per_catalog, dropped


def is_heldout(english):
    """Stable across runs and machines: the first 8 bytes of the text's SHA-256."""
    digest = hashlib.sha256(english.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 1000 < HELDOUT_PER_MILLE


# ---------------------------------------------------------------- tokenizer files

def train_spm(sentences, path):
    """A unigram SentencePiece model with nmt_nfkc normalisation, as opus-mt's are, written to
    path (through model_writer, so the file records no scratch path and is the same on every run)."""
    spm.set_random_generator_seed(SEED)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=model, vocab_size=SPM_VOCAB,
        model_type="unigram", normalization_rule_name="nmt_nfkc", character_coverage=1.0,
        num_threads=1, minloglevel=2)
    with open(path, "wb") as f:
        f.write(model.getvalue())
    return path


def marian_vocab(source_model, target_model, train_pairs):
    """vocab.json as opus-mt folders have it: `</s>` 0, `<unk>` 1, then every piece of both
    SentencePiece models by descending frequency in the tokenized training data (as
    marian-vocab orders it; ties and unseen pieces by the piece), `<pad>` last."""
    source, target = spm.SentencePieceProcessor(model_file=source_model), spm.SentencePieceProcessor(model_file=target_model)
    counts = collections.Counter()
    for english, german in train_pairs:
        counts.update(source.encode(english, out_type=str))
        counts.update(target.encode(german, out_type=str))
    specials = {"<unk>", "<s>", "</s>"}
    pieces = {p.id_to_piece(i) for p in (source, target) for i in range(p.get_piece_size())} - specials
    ordered = ["</s>", "<unk>"] + sorted(pieces, key=lambda piece: (-counts[piece], piece)) + ["<pad>"]
    return {piece: i for i, piece in enumerate(ordered)}


def write_tokenizer(out, train_pairs):
    """source.spm, target.spm, vocab.json, then MarianTokenizer's own save (tokenizer_config.json
    and whatever else transformers writes). Returns the tokenizer."""
    os.makedirs(out, exist_ok=True)
    source_model = train_spm([e for e, _ in train_pairs], os.path.join(out, "source.spm"))
    target_model = train_spm([g for _, g in train_pairs], os.path.join(out, "target.spm"))
    with open(os.path.join(out, "vocab.json"), "w") as f:
        json.dump(marian_vocab(source_model, target_model, train_pairs), f, ensure_ascii=False, indent=2)
    tokenizer = MarianTokenizer(source_model, target_model, os.path.join(out, "vocab.json"), model_max_length=512)
    tokenizer.save_pretrained(out)
    return tokenizer


# ---------------------------------------------------------------- the model

def new_config(tokenizer):
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    return MarianConfig(vocab_size=len(tokenizer), decoder_vocab_size=len(tokenizer), pad_token_id=pad,
                        eos_token_id=eos, bos_token_id=eos, decoder_start_token_id=pad,
                        forced_eos_token_id=eos, **MODEL)


def generation_config(config):
    """As opus-mt's generation_config.json: beam 4, pad never generated, eos forced at max_length."""
    pad, eos = config.pad_token_id, config.eos_token_id
    return GenerationConfig(bad_words_ids=[[pad]], bos_token_id=eos, decoder_start_token_id=pad,
                            eos_token_id=eos, forced_eos_token_id=eos, pad_token_id=pad, **GENERATION)


def encode_pairs(tokenizer, pairs):
    """(source ids, label ids) per pair, both ending with `</s>`."""
    sources = tokenizer([e for e, _ in pairs])["input_ids"]
    labels = tokenizer(text_target=[g for _, g in pairs])["input_ids"]
    return list(zip(sources, labels))


def epoch_batches(examples, epoch, max_tokens):
    """One epoch's batches, the same on every run: shuffle with a seed per epoch, sort chunks of
    100 batches' worth by length (little padding), cut batches of at most max_tokens source or
    target tokens (padding counted), serve them in shuffled order."""
    rng = random.Random(SEED + epoch)
    order = list(range(len(examples)))
    rng.shuffle(order)
    batches = []
    chunk = 100 * max_tokens // 16
    for start in range(0, len(order), chunk):
        part = sorted(order[start: start + chunk], key=lambda i: (len(examples[i][1]), len(examples[i][0])))
        batch, longest = [], 0
        for i in part:
            longest_next = max(longest, len(examples[i][0]), len(examples[i][1]))
            if batch and longest_next * (len(batch) + 1) > max_tokens:
                batches.append(batch)
                batch, longest_next = [], max(len(examples[i][0]), len(examples[i][1]))
            batch.append(i)
            longest = longest_next
        batches.append(batch)
    rng.shuffle(batches)
    return batches


def schedule(examples, max_tokens):
    """(epoch, batch) for every training step, epoch after epoch."""
    for epoch in itertools.count():
        for batch in epoch_batches(examples, epoch, max_tokens):
            yield epoch, batch


def collate(examples, batch, pad):
    """Padded input_ids, attention_mask and labels (-100 where padded) tensors."""
    sources = [examples[i][0] for i in batch]
    labels = [examples[i][1] for i in batch]
    width_s, width_t = max(map(len, sources)), max(map(len, labels))
    input_ids = torch.tensor([s + [pad] * (width_s - len(s)) for s in sources])
    label_ids = torch.tensor([t + [-100] * (width_t - len(t)) for t in labels])
    return input_ids, (input_ids != pad).long(), label_ids


def learning_rate(step, args):
    """Linear warmup, then cosine decay to a tenth of the peak."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def loss_of(model, examples, batch, pad, smoothing):
    input_ids, mask, labels = collate(examples, batch, pad)
    logits = model(input_ids=input_ids, attention_mask=mask, labels=labels).logits
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                                             ignore_index=-100, label_smoothing=smoothing)


@torch.no_grad()
def heldout_loss(model, examples, pad, max_tokens):
    """Mean per-token cross-entropy (no smoothing) over the held-out pairs: monitoring only."""
    model.eval()
    total, tokens = 0.0, 0
    for batch in epoch_batches(examples, -1, max_tokens):
        n = sum(len(examples[i][1]) for i in batch)
        total += loss_of(model, examples, batch, pad, 0.0).item() * n
        tokens += n
    model.train()
    return total / tokens


def save_checkpoint(path, model, optimizer, step, log):
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
             "torch_rng": torch.get_rng_state(), "log": log}
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)


def train(model, examples, heldout, args):
    """AdamW with label smoothing, resuming from --work/checkpoint.pt when it is there.
    Returns the log: loss and held-out loss every 50 / 250 steps, and the seconds spent."""
    pad = model.config.pad_token_id
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), eps=1e-9, weight_decay=0.01)
    checkpoint = os.path.join(args.work, "checkpoint.pt")
    step, log = 0, {"progress": [], "seconds": 0.0}
    if os.path.exists(checkpoint):
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        step, log = state["step"], state["log"]
        print(f"resuming at step {step}", flush=True)
    model.train()
    batches = itertools.islice(schedule(examples, args.max_tokens), step, None)
    start = time.time() - log["seconds"]
    recent = []
    while step < args.steps:
        epoch, batch = next(batches)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args)
        loss = loss_of(model, examples, batch, pad, args.label_smoothing)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        recent.append(loss.item())
        step += 1
        if step % 50 == 0 or step == args.steps:
            entry = {"step": step, "loss": round(sum(recent) / len(recent), 4), "seconds": round(time.time() - start)}
            recent = []
            if step % 250 == 0 or step == args.steps:
                entry["heldout_loss"] = round(heldout_loss(model, heldout, pad, args.max_tokens), 4)
            log["progress"].append(entry)
            print(f"step {step:5d}  epoch {epoch}  lr {learning_rate(step - 1, args):.2e}  "
                  + "  ".join(f"{k} {v}" for k, v in entry.items() if k != "step"), flush=True)
            if step % 250 == 0:
                log["seconds"] = time.time() - start
                save_checkpoint(checkpoint, model, optimizer, step, log)
    log["seconds"] = round(time.time() - start)
    return log


def save_model(model, out):
    """model.safetensors in float16 (as opus-mt's tc-big models ship) and config.json, with the
    generation defaults in generation_config.json."""
    model.generation_config = generation_config(model.config)
    model.to(torch.float16).save_pretrained(out)
    model.to(torch.float32)


# ---------------------------------------------------------------- evaluation

@torch.no_grad()
def translate(model, tokenizer, english, num_beams):
    """One source, unpadded: generate's output ids minus the start token (the final `</s>`
    kept), their text, and the smallest margin between the best and second-best score of any
    step (the scores generate chose from, after bad_words_ids; steps where forced_eos_token_id
    leaves one choice do not count). For beam search the margin is None."""
    output = model.generate(torch.tensor([tokenizer(english)["input_ids"]]), num_beams=num_beams,
                            return_dict_in_generate=True, output_scores=True)
    ids = output.sequences[0].tolist()[1:]
    margin = None
    if num_beams == 1:
        gaps = [float(top[0] - top[1]) for top in (step[0].topk(2).values for step in output.scores)]
        margin = round(min((g for g in gaps if math.isfinite(g)), default=math.inf), 4)
    return ids, tokenizer.decode(ids, skip_special_tokens=True), margin


def decode_all(model, tokenizer, pairs):
    items = []
    start = time.time()
    for n, (english, german) in enumerate(pairs):
        greedy_ids, greedy_text, margin = translate(model, tokenizer, english, 1)
        beam_ids, beam_text, _ = translate(model, tokenizer, english, 4)
        items.append({"en": english, "de": german, "input_ids": tokenizer(english)["input_ids"],
                      "greedy_ids": greedy_ids, "greedy": greedy_text, "greedy_margin": margin,
                      "beam4_ids": beam_ids, "beam4": beam_text})
        if (n + 1) % 100 == 0:
            print(f"decoded {n + 1}/{len(pairs)}  {time.time() - start:.0f} s", flush=True)
    return items


def scores(hypotheses, references, sources):
    """sacreBLEU's defaults (BLEU with 13a tokenisation, chrF), exact matches, and how many
    hypotheses have exactly the source's placeholders."""
    return {"bleu": round(sacrebleu.corpus_bleu(hypotheses, [references]).score, 2),
            "chrf": round(sacrebleu.corpus_chrf(hypotheses, [references]).score, 2),
            "exact_match": sum(h == r for h, r in zip(hypotheses, references)),
            "placeholders_kept": sum(placeholders(h) == placeholders(s) for h, s in zip(hypotheses, sources))}


def signatures(hypotheses, references):
    bleu, chrf = sacrebleu.BLEU(), sacrebleu.CHRF()
    bleu.corpus_score(hypotheses, [references])
    chrf.corpus_score(hypotheses, [references])
    return {"bleu": str(bleu.get_signature()), "chrf": str(chrf.get_signature())}


def evaluate(items):
    sources = [it["en"] for it in items]
    references = [it["de"] for it in items]
    return {"count": len(items), "with_placeholders": sum(bool(placeholders(s)) for s in sources),
            "copy_source": scores(sources, references, sources),
            "greedy": scores([it["greedy"] for it in items], references, sources),
            "beam4": scores([it["beam4"] for it in items], references, sources),
            "signatures": signatures(sources, references)}


def write_items_json(path, meta, items, key="items"):
    """One item per line: readable and diffable without being huge."""
    with open(path, "w") as f:
        f.write("{\n")
        for name, value in meta.items():
            f.write(f"  {json.dumps(name)}: {json.dumps(value, ensure_ascii=False)},\n")
        f.write(f'  "{key}": [\n')
        f.write(",\n".join("    " + json.dumps(it, ensure_ascii=False, separators=(", ", ": ")) for it in items))
        f.write("\n  ]\n}\n")


def write_evaluation(out, heldout_pairs, limit):
    """eval.json, heldout.json and samples.json, all from the shipped folder reloaded in float32
    (the float16 weights widened), so another engine can be checked against exactly these."""
    model = MarianMTModel.from_pretrained(out, dtype=torch.float32).eval()
    tokenizer = MarianTokenizer.from_pretrained(out)
    items = decode_all(model, tokenizer, heldout_pairs[:limit])
    result = evaluate(items)
    print(json.dumps(result, indent=1))
    with open(os.path.join(out, "eval.json"), "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    about = ("held-out pairs (English text hashed into the held-out 2.5%), with HF's input_ids and "
             "generate() outputs of the float16 weights loaded as float32, one source at a time; "
             "*_ids are generate's ids without the leading decoder_start_token_id (the final </s> kept); "
             "greedy_margin: the smallest best-minus-second score of a greedy step")
    write_items_json(os.path.join(out, "heldout.json"), {"description": about, "count": len(items)}, items)
    by_english = {it["en"]: it for it in items}
    samples = [by_english[e] for e in SAMPLES if e in by_english]
    write_items_json(os.path.join(out, "samples.json"),
                     {"description": "hand-picked held-out pairs, as in heldout.json"}, samples)


# ---------------------------------------------------------------- main

def write_data_json(out, per_catalog, dropped, pairs, train_pairs, heldout_pairs):
    """Which catalogs were read (file, owning package and version, SHA-256 prefix, entries,
    entries kept), what cleaning dropped, and the split's sizes: one catalog a line."""
    packages = owning_packages(list(per_catalog))
    catalogs = [{"file": os.path.basename(path), "package": packages.get(path, "?"),
                 "sha256": hashlib.sha256(open(path, "rb").read()).hexdigest()[:16], **counts}
                for path, counts in per_catalog.items()]
    meta = {"catalogs_glob": CATALOGS, "entries": sum(c["entries"] for c in catalogs),
            "dropped": dict(dropped.most_common()), "pairs_after_dedupe": len(pairs),
            "train": len(train_pairs), "heldout": len(heldout_pairs)}
    write_items_json(os.path.join(out, "data.json"), meta, catalogs, key="catalogs")
    print(f"{meta['entries']} entries in {len(catalogs)} catalogs -> {len(pairs)} pairs: "
          f"{len(train_pairs)} train, {len(heldout_pairs)} held out; {meta['dropped']}", flush=True)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--max-tokens", type=int, default=2400, help="tokens per batch (source or target, padded)")
    p.add_argument("--lr", type=float, default=7e-4)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--out", default=os.path.join(here, "..", "models", "en-de-messages"))
    p.add_argument("--work", default="/tmp/train_marian_demo", help="checkpoints")
    p.add_argument("--eval-limit", type=int, default=None, help="decode only the first N held-out pairs")
    p.add_argument("--evaluate-only", action="store_true")
    args = p.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    os.makedirs(args.work, exist_ok=True)
    pairs, per_catalog, dropped = extract_pairs(sorted(glob.glob(CATALOGS)))
    train_pairs = [pair for pair in pairs if not is_heldout(pair[0])]
    heldout_pairs = [pair for pair in pairs if is_heldout(pair[0])]
    if not args.evaluate_only:
        tokenizer = write_tokenizer(args.out, train_pairs)
        write_data_json(args.out, per_catalog, dropped, pairs, train_pairs, heldout_pairs)
        examples = encode_pairs(tokenizer, train_pairs)
        heldout = encode_pairs(tokenizer, heldout_pairs)
        per_epoch = len(epoch_batches(examples, 0, args.max_tokens))
        print(f"{per_epoch} batches an epoch: {args.steps / per_epoch:.1f} epochs", flush=True)
        model = MarianMTModel(new_config(tokenizer))
        print(f"{sum(t.numel() for t in model.parameters()):,} parameters", flush=True)
        log = train(model, examples, heldout, args)
        save_model(model, args.out)
        with open(os.path.join(args.out, "train_log.json"), "w") as f:
            settings = {k: v for k, v in vars(args).items() if k not in ("out", "work", "eval_limit", "evaluate_only")}
            json.dump(settings | log, f)
            f.write("\n")
    write_evaluation(args.out, heldout_pairs, args.eval_limit)


if __name__ == "__main__":
    main()
