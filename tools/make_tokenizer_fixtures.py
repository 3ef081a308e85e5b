#!/work/.venv/bin/python
"""The reference for wasmformer's SentencePiece and MarianTokenizer: fixtures made by the libraries.

Trains small SentencePiece models with `sentencepiece` itself on the English msgids and German
msgstrs of the gettext catalogs under /usr/share/locale/de/LC_MESSAGES/, builds Marian folders
(source.spm, target.spm, vocab.json, target_vocab.json, tokenizer_config.json) around them as
the Hugging Face hub serves opus-mt models, and records what transformers' `MarianTokenizer` and
bare `sentencepiece` make of a few hundred hard strings. Writes test/fixtures/tokenizers/:

  strings.json              the strings, one list every case is run on
  trie.json                 transformers' Trie.split on token sets with shared prefixes
  charsmaps.json            the rules of the builtin charsmaps (nmt_nfkc, nmt_nfkc_cf) whose key is
                            one code point, a seeded sample of their longer keys, and every rule
                            of the user-defined TSV, as sentencepiece's own Decompile() lists them
  <case>/                   a Marian folder (CASES below says what each covers) and expected.json:
    spm_{source,target}     per string: sentencepiece's pieces, ids, decode(ids), decode_pieces(pieces)
                            (null where it equals decode(ids)) and normalize(); the piece count,
                            unk / bos / eos / pad ids and normalizer_spec.name
    marian                  per string: HF's tokenize(text), input_ids, labels (text_target) and
                            decode(input_ids) / decode(labels) with skip_special_tokens=True
    decode_random           seeded random id lists and HF's decode of each
    special                 pad / eos / unk ids, all_special_tokens and their ids, vocab sizes
  spm-<kind>/               bare models (WORD, CHAR, shifted scores, UNUSED pieces, spaces not
                            escaped): model.spm and expected.json

Run: /work/.venv/bin/python tools/make_tokenizer_fixtures.py [--out test/fixtures/tokenizers]
(transformers 5.18.0, sentencepiece 0.2.2). Training is seeded and single-threaded.
"""
import argparse
import gettext
import glob
import io
import json
import random
import shutil
import tempfile
import warnings
from pathlib import Path

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2
import transformers
from transformers import MarianTokenizer

REPO = Path(__file__).resolve().parent.parent
CATALOGS = '/usr/share/locale/de/LC_MESSAGES/*.mo'
# The shared reference's tiny Marian folder (its copy in the repository), whose expected.json has
# 32 hard strings with HF's ids: checked here against HF again.
MARIAN_TINY = REPO / 'test/fixtures/shared/marian-tiny'

# A user-defined normalization rule TSV (source code points, tab, target code points, in hex):
# one-to-one, one-to-many, many-to-one, deletion, and keys that are prefixes of longer keys.
RULES_TSV = [
    ('41', '61'),                 # A -> a
    ('DF', '73 73'),              # ß -> ss
    ('153', '6F 65'),             # œ -> oe
    ('FB01', '66 69'),            # ﬁ -> fi
    ('2026', '2E 2E 2E'),         # … -> ...
    ('9', '20'),                  # tab -> space
    ('A0', '20'),                 # no-break space -> space
    ('3000', '20'),               # ideographic space -> space
    ('AD', ''),                   # soft hyphen -> deleted
    ('200B', ''),                 # zero-width space -> deleted
    ('65 301', 'E9'),             # e + combining acute -> é
    ('61 308', 'E4'),             # a + combining diaeresis -> ä
    ('3C 3C', 'AB'),              # << -> «
    ('3C 3C 3C', '2039'),         # <<< -> ‹ (longer key wins)
    ('201E', '22'),               # „ -> "
    ('201C', '22'),               # “ -> "
    ('FF21', '41'),               # Ａ -> A (not a, rules are not applied twice)
    ('1F642', '3A 29'),           # 🙂 -> :)
]
DENORM_TSV = [('2E 2E 2E', '2026'), ('71', '51')]   # decoding writes ... as … and q as Q

# Every model is trained on 12000 lines of one language, seeded and single-threaded.
MODELS = {
    # sentencepiece's defaults: unigram, nmt_nfkc, <unk>=0 <s>=1 </s>=2.
    'en_unigram_nfkc': dict(lang='en', model_type='unigram', vocab_size=1000),
    'de_unigram_nfkc': dict(lang='de', model_type='unigram', vocab_size=1000),
    # BPE, byte fallback, Marian's own special layout (</s>=0, <unk>=1, no <s>); case folding in English.
    'en_bpe_cf_bytes': dict(lang='en', model_type='bpe', vocab_size=900, normalization_rule_name='nmt_nfkc_cf',
                            byte_fallback=True, eos_id=0, unk_id=1, bos_id=-1, character_coverage=0.98),
    'de_bpe_bytes': dict(lang='de', model_type='bpe', vocab_size=900, normalization_rule_name='identity',
                            byte_fallback=True, eos_id=0, unk_id=1, bos_id=-1, pad_id=2, character_coverage=0.98),
    # No normalization at all, extra whitespace kept, user-defined symbols, byte fallback.
    'en_unigram_identity': dict(lang='en', model_type='unigram', vocab_size=700, normalization_rule_name='identity',
                                remove_extra_whitespaces=False, byte_fallback=True, character_coverage=0.99,
                                user_defined_symbols=['<sep>', '::', 'C++', 'e.g.', '🙂', '>>de<<', '\u2581\u2581']),
    'de_unigram_identity': dict(lang='de', model_type='unigram', vocab_size=700, normalization_rule_name='identity',
                                add_dummy_prefix=False, user_defined_symbols=['<sep>', 'z.B.', '...']),
    # The rule TSV above (with a denormalizer), and BPE with whitespace as a suffix.
    'en_unigram_rules': dict(lang='en', model_type='unigram', vocab_size=800, rules=True,
                             control_symbols=['<ctl>'], character_coverage=0.995),
    'de_bpe_suffix': dict(lang='de', model_type='bpe', vocab_size=800, normalization_rule_name='identity',
                          treat_whitespace_as_suffix=True, split_digits=True, eos_id=0, unk_id=1, bos_id=-1),
    # Bare models for the other model types.
    'en_word': dict(lang='en', model_type='word', vocab_size=1500, normalization_rule_name='identity'),
    'de_char': dict(lang='de', model_type='char', vocab_size=150, normalization_rule_name='identity'),
}

CASES = {
    # Shared vocab.json as opus-mt has it: both models' pieces, some missing (they are <unk>),
    # language codes and <s> in it, <pad> last; no tokenizer_config.json (HF's defaults).
    'unigram-nfkc-shared': dict(source='en_unigram_nfkc', target='de_unigram_nfkc', separate=False,
                                drop=0.04, extra=['>>de<<', '>>en<<', '>>fr<<', '<s>'], config=None),
    # separate_vocabs: target_vocab.json of another size (so <pad> differs), as save_pretrained
    # writes tokenizer_config.json (added_tokens_decoder).
    'bpe-bytes-separate': dict(source='en_bpe_cf_bytes', target='de_bpe_bytes', separate=True,
                               drop=0.03, extra=[], config='saved'),
    # Identity normalizer, user-defined symbols (one of them an additional special token), byte
    # fallback; a hand-written old-style tokenizer_config.json with split_special_tokens (so
    # special tokens in the text go through SentencePiece).
    'unigram-identity-userdef': dict(source='en_unigram_identity', target='de_unigram_identity', separate=False,
                                     drop=0.05, extra=['>>de<<'],
                                     config={'source_lang': 'en', 'target_lang': 'de', 'split_special_tokens': True,
                                             'additional_special_tokens': ['<sep>']}),
    # Rule TSV + denormalizer (source), BPE with whitespace as suffix (target), separate vocabs;
    # added tokens with lstrip + rstrip, lstrip alone and single_word (two of them in no
    # vocabulary), a special token that is in no vocabulary, and clean_up_tokenization_spaces.
    'rules-suffix-separate': dict(source='en_unigram_rules', target='de_bpe_suffix', separate=True,
                                  drop=0.02, extra=['<mask>'],
                                  config={'separate_vocabs': True, 'clean_up_tokenization_spaces': True,
                                          'extra_special_tokens': ['<eop>'],
                                          'added_tokens_decoder': 'mask'}),
}
def shifted_scores(model):
    """The model with every normal piece's score raised by 20, so user-defined pieces (whose score
    does not follow the others') no longer win: pins how sentencepiece scores them."""
    proto = sentencepiece_model_pb2.ModelProto.FromString(model)
    for piece in proto.pieces:
        if piece.type == piece.NORMAL:
            piece.score += 20
    return proto.SerializeToString()


def some_unused(model):
    """The model with a seeded tenth of its longer normal pieces made UNUSED: segmentation skips
    them (unigram) or splits them back into the pieces they were merged from (BPE)."""
    proto = sentencepiece_model_pb2.ModelProto.FromString(model)
    rng = random.Random(5)
    for piece in proto.pieces:
        if piece.type == piece.NORMAL and len(piece.piece) > 1 and rng.random() < 0.1:
            piece.type = piece.UNUSED
    return proto.SerializeToString()


def no_escape(model):
    """The model with escape_whitespaces off (its trainer refuses to train so): spaces stay spaces,
    which no piece holds."""
    proto = sentencepiece_model_pb2.ModelProto.FromString(model)
    proto.normalizer_spec.escape_whitespaces = False
    return proto.SerializeToString()


# Bare models: (trained model, transformation of its bytes or None).
BARE = {'spm-word': ('en_word', None), 'spm-char': ('de_char', None),
        'spm-userdef-shifted': ('en_unigram_identity', shifted_scores),
        'spm-unigram-unused': ('en_unigram_identity', some_unused), 'spm-bpe-unused': ('de_bpe_suffix', some_unused),
        'spm-no-escape': ('de_unigram_identity', no_escape)}


def hard_strings(en, de):
    """The strings every case runs on: what normalization, whitespace, unknown characters and
    Marian's language codes and special tokens make hard, then plain sentences."""
    nfkc = [
        'Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３！', 'Ｈｅｌｌｏ\u3000Ｗｏｒｌｄ', 'ﬁnd the ﬂow ﬀ ﬃ ﬄ ﬅ ﬆ', 'œuvre Æsop ĳssel',
        '㎏ ㎞ ㎡ ㍱ ℡ ™ ℃ ℉ № ℅', 'x² + y³ = z⁴ and H₂O, 10⁻³', '¹²³⁴ ₀₁₂', 'Ⅰ Ⅱ Ⅲ Ⅳ Ⅻ ⅰⅱⅲ Ⅿ',
        '① ② ⑳ Ⓐ ⓐ ㉑', '½ ¼ ¾ ⅓ ⅞ ↉', 'ℌ𝔢𝔩𝔩𝔬 𝐁𝐨𝐥𝐝 𝑰𝒕𝒂𝒍𝒊𝒄 𝟙𝟚𝟛', 'ｶﾀｶﾅ ｱｲｳｴｵ ﾊﾟﾋﾟ', 'Straße STRASSE straße',
        'µ vs μ, Å vs Å, K vs K', 'ſ ǅ ǈ ŉ ﬅ', 'ﻻ ﷺ ﷽', '㈱ ㍻ 🄰 ㋿', '… ‥ ․', 'ＡＢＣ＠ｅｘａｍｐｌｅ．ｃｏｍ',
        'İstanbul ıi Iİ', 'ΣΑΣ σας ς', 'Ǆǅǆ', '\u2126 \u212b \u2160', '０１２３４５６７８９', '﹖﹗﹙﹚',
        '\uff5e\uff5f\uff60', 'Ⓜ️', '℀ ℁ ℆', 'ᵃᵇᶜ ᴬᴮ', '\u00b5m \u00b0C', 'ｇｏｏｇｌｅ',
    ]
    marks = [
        'Café', 'Cafe\u0301', 'Café vs Cafe\u0301 (composed and decomposed)', 'n\u0303 ñ', 'a\u0308\u0304 ǟ',
        'e\u0301\u0301 double', '\u0301abc', '\u0308', 'A\u030a Å', '\u1100\u1161\u11a8 각', 'Tiếng Việt',
        'Tie\u0302\u0301ng Vie\u0323\u0302t', 'Z\u0351\u0352\u0353a\u0354\u0355l\u0356g\u0357o', 'o\u0338 ø',
        'ä ö ü Ä Ö Ü ß', 'a\u0308 o\u0308 u\u0308', 'ﬁ\u0301', 'i\u0307', 'q\u0323\u0307 vs q\u0307\u0323',
    ]
    spaces = [
        'a  b', 'a\tb', 'a\nb', 'a\r\nb', '\t\tleading tabs', 'trailing tabs\t\t', 'a\u00a0b', 'a\u2002b',
        'a\u2003b', 'a\u2009b', 'a\u200ab', 'a\u200bb', 'a\u200cb', 'a\u200db', 'a\u2060b', 'a\ufeffb',
        'a\u3000b', 'a\u1680b', 'a\u180eb', 'a\u2028b', 'a\u2029b', 'a\u202fb', 'a\u205fb', 'a\x85b',
        'a\x0bb', 'a\x0cb', 'a\x1cb\x1dc\x1ed\x1fe', '  leading and trailing   spaces  ', ' a', 'a ',
        '  a  ', '   ', '\t', '\n', '\r\n', '\u3000\u3000', '\u200b', '\u00a0', ' \t \n ', 'x \u00a0 y',
        'Tabs\tand\u00a0no-break\u2003em space', 'multi\n\nline\n\ntext', 'a\u200b\u200bb', '\u200bstart',
        'end\u200b', 'a \u200b b', '\u2581', '\u2581\u2581hello', 'under\u2581score', 'a\u2581 b',
        'word\u00ad break', 'a\u034fb', '\ufeffBOM first',
    ]
    emoji = [
        '🙂', 'Emoji 🙂 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 astral', '👍🏽 thumbs', '👨\u200d👩\u200d👧\u200d👦 family',
        '🏳\ufe0f\u200d🌈 flag', '❤\ufe0f love', '🇩🇪🇺🇸', '1\ufe0f\u20e3 keycap', '🧑🏿\u200d💻', 'a🙂b',
        '🙂🙂🙂', '😀 😃 😄 😁', '🀄 𓀀 𠀀𠀁', '\U0010fffd private', '\U000e0041\U000e0042 tags', '🫠🪿',
    ]
    scripts = [
        '数字 and 日本語 text', '日本語のテキスト', '中文测试，标点。', '한국어 텍스트', 'カタカナ ひらがな',
        '東京 Tokyo', 'שלום עולם', 'مرحبا بالعالم', '\u202eRTL override\u202c', 'a\u200fmark', 'Hello שלום world',
        'ไทย ภาษา', 'Ελληνικά κείμενα', 'Русский текст', 'हिन्दी पाठ', 'ᚠᚢᚦ runes', 'Ꭰ Ꭱ Cherokee',
    ]
    unknown = [
        '☃ ☄ ♞', 'ꙮ', '┌─┐ │ └─┘', '⌘⌥⇧', '\ue000 pua', '\ufffd replacement', '\ufffe\uffff nonchars',
        '\U0001f9ff nazar', '𝄞 music', '∮ ∯ ∰', '⠁⠃⠉ braille', 'ab☃cd', '☃☃☃',
    ]
    control = [
        '\x00', 'a\x00b', '\x01\x02\x03', '\x07 bell', '\x1b[31mred\x1b[0m', '\x7f del', '\x80\x9f c1',
        'a\x08b', '\x0e\x0f', 'x\x00\x00y', 'control\x1f', '\x00 \x00',
    ]
    empty = ['', ' ', '  ', '\t\t', '\n\n']
    long = [
        'Donaudampfschifffahrtsgesellschaftskapitänswitwe', 'pneumonoultramicroscopicsilicovolcanoconiosis',
        'a' * 300, 'ab' * 150, '1234567890' * 20, '!' * 100, 'x' * 50 + ' ' + 'y' * 50,
        'Rindfleischetikettierungsüberwachungsaufgabenübertragungsgesetz ' * 3, '☃' * 40,
        '\u3000'.join(['wide'] * 20), ('word ' * 120).strip(),
    ]
    codes = [
        '>>de<< Hello', '>>de<<Hello', '>>fr<< Bonjour', '>>de<<', '>>de<< ', ' >>de<< Hello',
        'Hello >>de<< world', '>>de Hello', '>de<< Hello', '>>de<<>>fr<< x', '>><< x', '>>a b<< c',
        '>>de<<\tHallo', '>>DE<<', '>>xyz<< unknown code', '>>de<<</s>', '>>', '<<', '>>>de<<<',
        '>>de<', '>>ü<< x', '</s>>>de<< x', '>>de<< >>fr<<', '>>en<< ﬁ', '>>de<<   spaced   ', '>>de<<<unk>',
        '>><<', '>>\u3000<< y',
    ]
    specials = [
        '</s>', 'Hello </s> world', '<unk>', '<pad>', '<s>', 'a</s>b', '</s></s>', '<unk><pad>', '< /s>',
        '</S>', '<eop>', '<mask>', 'a <mask> b', 'a<mask>b', '<mask>', ' <mask> ', '<sep>', 'x <sep> y',
        'x<sep>y', '<0x41>', '<ctl>', 'C++ and e.g. this :: that', 'z.B. so...', '_underscores_',
        '</s> leading', 'trailing </s>', '<pad><pad>', '<unk>word', 'word<unk>', '<<<', '<< quoted >>',
        'a << b <<< c', '„Anführungszeichen“', 'A b A', 'smile 🙂 :)', 'ßﬁ…œ', 'ä and a\u0308',
        'a::b::::c', 'C++C++ e.g.e.g.', '🙂🙂 🙂', '<sep><sep>', '>>de<<>>de<<',
        'a [W] b', 'a[W]b', '[W]x', 'x[W]', '[W]', ' [W] ', 'x [W]y', 'x\u3000<L> y', 'x  <L>', '<L>  y',
        '\t<mask>\t', '<mask><L>[W]<mask>',
    ] + ['x' + ' ' * n + 'z' for n in (2, 3, 7, 9, 10, 11, 17, 25)]
    plain = [
        'Hello world', "Don't stop: \"quotes\", 'apostrophes' — dashes… ellipsis", 'UPPER lower MiXeD',
        'file.txt /usr/bin --option=value -x', 'https://example.com/a?b=c&d=e#frag', 'user@example.org',
        'x = f(y) + 1; // code', '**bold** _it_ `code`', '3.14 1,000 10% $5 €5 £5 ¥5', '«Guillemets» ‹single›',
        '‚low‘ „double“ “curly” ‘single’', 'em — en – minus − hyphen ‐', '•  bullet · middot', '© ® ™ § ¶ †',
        '(use "git rebase --abort" to check out the original branch)', '600 dpi, color, black + color',
        'Das ist ein Test.', 'Fehler beim Öffnen der Datei »%s«: %s', 'Größe: 12 KiB',
    ]
    rng = random.Random(20240611)
    corpus = rng.sample([s for s in en if 8 < len(s) < 120], 30) + rng.sample([s for s in de if 8 < len(s) < 120], 30)
    out = []
    for s in nfkc + marks + spaces + emoji + scripts + unknown + control + empty + long + codes + specials + plain + corpus:
        if s not in out:
            out.append(s)
    return out


def read_corpus():
    """English msgids and German msgstrs of every readable catalog, one line each, deduplicated."""
    en, de = [], []
    for f in sorted(glob.glob(CATALOGS)):
        try:
            with open(f, 'rb') as fh:
                catalog = gettext.GNUTranslations(fh)._catalog
        except (UnicodeDecodeError, OSError):
            continue  # a catalog in another encoding (net-tools is latin-1)
        for k, v in catalog.items():
            if isinstance(k, tuple):
                k = k[0]
            if k and v:
                en.extend(l for l in k.split('\n') if l.strip())
                de.extend(l for l in v.split('\n') if l.strip())
    return list(dict.fromkeys(en)), list(dict.fromkeys(de))


def tsv(rules):
    return ''.join(f'{a}\t{b}\n' for a, b in rules)


def train(name, spec, corpus, tmp):
    spec = dict(spec)
    lang = spec.pop('lang')
    if spec.pop('rules', False):
        (tmp / 'rules.tsv').write_text(tsv(RULES_TSV))
        (tmp / 'denorm.tsv').write_text(tsv(DENORM_TSV))
        spec.update(normalization_rule_tsv=str(tmp / 'rules.tsv'), denormalization_rule_tsv=str(tmp / 'denorm.tsv'))
    lines = random.Random(name).sample(corpus[lang], 12000)
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=out, num_threads=1, seed_sentencepiece_size=50000,
                                   shuffle_input_sentence=False, minloglevel=2, hard_vocab_limit=False, **spec)
    if 'normalization_rule_tsv' not in spec:
        return out.getvalue()
    # The trainer keeps the TSVs' paths, which are temporary: keep their names only.
    proto = sentencepiece_model_pb2.ModelProto.FromString(out.getvalue())
    proto.normalizer_spec.normalization_rule_tsv = 'rules.tsv'
    proto.denormalizer_spec.normalization_rule_tsv = 'denorm.tsv'
    return proto.SerializeToString()


def spm_record(sp, strings):
    """sentencepiece's own answers, per string."""
    pieces = [sp.encode(s, out_type=str) for s in strings]
    ids = [sp.encode(s, out_type=int) for s in strings]
    decoded = [sp.decode(i) for i in ids]
    return {
        'pieces': pieces,
        'ids': ids,
        'decoded': decoded,
        # decode_pieces(pieces), where it differs from decode(ids) (unknown pieces), else null
        'decoded_pieces': [None if sp.decode_pieces(p) == d else sp.decode_pieces(p) for p, d in zip(pieces, decoded)],
        'normalized': [sp.normalize(s) for s in strings],
        'size': sp.get_piece_size(),
        'unk_bos_eos_pad': [sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id()],
        'normalizer': sentencepiece_model_pb2.ModelProto.FromString(sp.serialized_model_proto()).normalizer_spec.name,
    }


def marian_vocab(pieces, drop, extra, seed):
    """A vocab.json as Marian writes one: </s> and <unk> first, then pieces (some dropped), <pad> last."""
    rng = random.Random(seed)
    keep = [p for p in pieces if p not in ('</s>', '<unk>', '<pad>') and rng.random() >= drop]
    keep = list(dict.fromkeys(keep + extra))
    vocab = {'</s>': 0, '<unk>': 1}
    for p in keep:
        vocab.setdefault(p, len(vocab))
    vocab['<pad>'] = len(vocab)
    return vocab


def write_json(path, obj):
    """Compact JSON, one top-level field or list item per line, so diffs stay readable."""
    def dump(x):
        return json.dumps(x, ensure_ascii=False, separators=(',', ':'))
    if isinstance(obj, dict):
        body = ',\n'.join(f'{dump(k)}:{dump(v)}' for k, v in obj.items())
        path.write_text('{\n' + body + '\n}\n', encoding='utf-8')
    else:
        path.write_text('[\n' + ',\n'.join(dump(x) for x in obj) + '\n]\n', encoding='utf-8')


def write_vocab(path, vocab):
    path.write_text(json.dumps(vocab, ensure_ascii=False, indent=2) + '\n', encoding='utf-8')


def make_case(name, case, models, strings, out):
    folder = out / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / 'source.spm').write_bytes(models[case['source']])
    (folder / 'target.spm').write_bytes(models[case['target']])
    src = spm.SentencePieceProcessor(model_proto=models[case['source']])
    tgt = spm.SentencePieceProcessor(model_proto=models[case['target']])
    src_pieces = [src.id_to_piece(i) for i in range(src.get_piece_size())]
    tgt_pieces = [tgt.id_to_piece(i) for i in range(tgt.get_piece_size())]
    if case['separate']:
        write_vocab(folder / 'vocab.json', marian_vocab(src_pieces, case['drop'], case['extra'], name + 'src'))
        write_vocab(folder / 'target_vocab.json', marian_vocab(tgt_pieces, case['drop'], [], name + 'tgt'))
    else:
        write_vocab(folder / 'vocab.json', marian_vocab(src_pieces + tgt_pieces, case['drop'], case['extra'], name))
    config = case['config']
    if config == 'saved':
        with tempfile.TemporaryDirectory() as d:
            MarianTokenizer(str(folder / 'source.spm'), str(folder / 'target.spm'), str(folder / 'vocab.json'),
                            str(folder / 'target_vocab.json'), separate_vocabs=True).save_pretrained(d)
            shutil.copy(Path(d) / 'tokenizer_config.json', folder / 'tokenizer_config.json')
    elif isinstance(config, dict):
        config = dict(config)
        if config.get('added_tokens_decoder') == 'mask':
            vocab = json.loads((folder / 'vocab.json').read_text())
            def added(content, lstrip=False, rstrip=False, single_word=False):
                return {'content': content, 'lstrip': lstrip, 'rstrip': rstrip, 'normalized': False,
                        'single_word': single_word, 'special': True}
            config['added_tokens_decoder'] = {
                str(vocab['<mask>']): added('<mask>', lstrip=True, rstrip=True),
                str(len(vocab) + 5): added('[W]', single_word=True),
                str(len(vocab) + 6): added('<L>', lstrip=True),
            }
        (folder / 'tokenizer_config.json').write_text(json.dumps(config, ensure_ascii=False, indent=2) + '\n')
    tok = MarianTokenizer.from_pretrained(str(folder))
    marian = []
    for s in strings:
        enc = tok(s, text_target=s)
        marian.append({
            'tokens': tok.tokenize(s),
            'input_ids': enc['input_ids'],
            'labels': enc['labels'],
            'decoded_input': tok.decode(enc['input_ids'], skip_special_tokens=True),
            'decoded_labels': tok.decode(enc['labels'], skip_special_tokens=True),
        })
    size = max(len(tok.decoder), max(tok.decoder) + 1)
    rng = random.Random(name)
    decode_random = []
    for n in range(60):
        ids = [rng.randrange(size) for _ in range(rng.randrange(1, 24))]
        decode_random.append({'ids': ids, 'text': tok.decode(ids, skip_special_tokens=True)})
    expected = {
        'case': name,
        'about': CASES_ABOUT[name],
        'reference': f'transformers {transformers.__version__} MarianTokenizer, sentencepiece {spm.__version__}',
        'special': {
            'pad_id': tok.pad_token_id, 'eos_id': tok.eos_token_id, 'unk_id': tok.unk_token_id,
            'all_special_tokens': tok.all_special_tokens, 'all_special_ids': tok.all_special_ids,
            'src_vocab_size': max(tok.encoder.values()) + 1,
            'tgt_vocab_size': max((tok.target_encoder if case['separate'] else tok.encoder).values()) + 1,
        },
        'marian': marian,
        'decode_random': decode_random,
        'spm_source': spm_record(src, strings),
        'spm_target': spm_record(tgt, strings),
    }
    write_json(folder / 'expected.json', expected)


def make_bare(name, model, strings, out):
    folder = out / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / 'model.spm').write_bytes(model)
    sp = spm.SentencePieceProcessor(model_proto=model)
    write_json(folder / 'expected.json', {'case': name, 'reference': f'sentencepiece {spm.__version__}',
                                          'spm': spm_record(sp, strings)})


def check_marian_tiny():
    """The shared reference's 32 hard strings: transformers here gives the same ids and texts."""
    reference = json.loads((MARIAN_TINY / 'expected.json').read_text())
    tok = MarianTokenizer.from_pretrained(str(MARIAN_TINY))
    for t in reference['tokenizer']:
        enc = tok(t['text'], text_target=t['text'])
        assert enc['input_ids'] == t['src_ids'] and enc['labels'] == t['tgt_ids'], t['text']
        assert tok.decode(t['tgt_ids'], skip_special_tokens=True) == t['decoded_tgt'], t['text']


def charsmaps(models):
    """What sentencepiece's Decompile() says the charsmaps hold (single code point keys in full)."""
    rng = random.Random(7)
    result = {}
    for name in ('nmt_nfkc', 'nmt_nfkc_cf'):
        rules = spm.SentencePieceNormalizer(rule_name=name).Decompile()
        single = {k: v for k, v in rules if len(k) == 1}
        longer = rng.sample([[k, v] for k, v in rules if len(k) > 1], 800)
        result[name] = {'count': len(rules), 'single': single, 'longer': longer}
    rules = spm.SentencePieceNormalizer(model_proto=models['en_unigram_rules']).Decompile()
    result['user_defined'] = {'count': len(rules), 'rules': [[k, v] for k, v in rules]}
    return result


def trie_cases():
    """transformers' added-token Trie on token sets where tokens prefix or contain each other."""
    from transformers.tokenization_python import Trie
    sets = [['[CLS]', 'extra_id_1', 'extra_id_100'], ['ab', 'abc', 'b', 'bcd', 'cd'], ['lower', 'blowing', 'low', 'l'],
            ['</s>', '<s>', '<unk>', '<pad>'], ['aaa', 'aa'], ['🙂', '🙂🙂x', 'x'], ['AB', 'BC', 'ABCD', 'C']]
    rng = random.Random(11)
    cases = []
    for tokens in sets:
        trie = Trie()
        for t in tokens:
            trie.add(t)
        alphabet = sorted(set(''.join(tokens))) + [' ', 'z']
        texts = ['[CLS] This is a extra_id_100', 'blower', ''] + [
            ''.join(rng.choice(tokens + alphabet) for _ in range(rng.randrange(1, 9))) for _ in range(60)]
        cases.append({'tokens': tokens, 'splits': [[t, trie.split(t)] for t in texts]})
    return cases


CASES_ABOUT = {
    'unigram-nfkc-shared': 'unigram nmt_nfkc both sides, shared vocab.json with 4% of pieces missing, language codes, no tokenizer_config.json',
    'bpe-bytes-separate': 'BPE with byte_fallback both sides (nmt_nfkc_cf source, identity target), separate vocabs of different sizes, tokenizer_config.json as save_pretrained writes it',
    'unigram-identity-userdef': 'unigram identity normalizer, user-defined symbols, byte fallback (source), no dummy prefix (target), extra whitespace kept (source), additional special token, split_special_tokens',
    'rules-suffix-separate': 'unigram with a user-defined rule TSV and a denormalizer (source), BPE with whitespace as suffix (target), separate vocabs, lstrip/rstrip/single_word added tokens, a special token in no vocab, clean_up_tokenization_spaces',
}


def main():
    # transformers' notes on sacremoses (MarianTokenizer's _tokenize never calls it) and on
    # marian-tiny's model_max_length of 48 say nothing about the ids.
    warnings.filterwarnings('ignore', message='Recommended: pip install sacremoses')
    transformers.logging.set_verbosity_error()
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default=str(REPO / 'test/fixtures/tokenizers'))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    en, de = read_corpus()
    strings = hard_strings(en, de)
    with tempfile.TemporaryDirectory() as d:
        models = {name: train(name, spec, {'en': en, 'de': de}, Path(d)) for name, spec in MODELS.items()}
    write_json(out / 'strings.json', strings)
    write_json(out / 'charsmaps.json', charsmaps(models))
    write_json(out / 'trie.json', trie_cases())
    for name, case in CASES.items():
        make_case(name, case, models, strings, out)
    check_marian_tiny()
    for name, (model, transform) in BARE.items():
        make_bare(name, transform(models[model]) if transform else models[model], strings, out)
    print(f'{len(strings)} strings, {len(CASES)} Marian cases, {len(BARE)} bare models -> {out}')


if __name__ == '__main__':
    main()
