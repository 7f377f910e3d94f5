"""Text for tokenizer tests: a training text, and a corpus of awkward strings to compare on.

The corpus aims at the places byte-level BPE implementations differ: regex alternatives
(contractions in any case, letters after punctuation, digit runs cut in threes, whitespace before
newlines and at the end), UTF-8 sequences of every length, emoji joined by ZWJ and flags made of
two regional indicators, text that is not valid UTF-8 (decoded with replacement), special-token
strings inside words, and (built by the tests from the vocabulary) runs of rare tokens.
"""

from __future__ import annotations

import random

PROSE = [
    "It was the best of times, it was the worst of times; it was the age of wisdom.",
    "Shall I compare thee to a summer's day? Thou art more lovely and more temperate.",
    "The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX!",
    "Mr. O'Neill's dog--a 3-year-old--didn't bark at 4:30 a.m. (or so they say...).",
    "\"Quoted,\" she said. 'Single-quoted,' he replied. «Guillemets» and „Anführungszeichen“.",
    "e.g. i.e. etc. U.S.A. Ph.D. -- em—dash – en-dash … ellipsis • bullet ¶ pilcrow § section",
]

CODE = [
    "def forward(self, x: np.ndarray) -> np.ndarray:\n    return x @ self.w.T  # (T, D)\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];\n}\n",
    "if __name__ == \"__main__\":\n    main()\n\n\n",
    "SELECT name, COUNT(*) FROM users WHERE id >= 42 GROUP BY name;",
    "<div class=\"x\">&amp; &lt;tag&gt;</div>\r\n<br/>",
    "fn main() { println!(\"{:?}\", vec![1, 2, 3]); }",
    "x+=1;y-=2;z*=3;w/=4;v%=5;u**=6;t//=7;s&=8;r|=9;q^=10;p<<=11;o>>=12",
    "{\"key\": [1, 2.5, -3e-7, true, null], \"nested\": {\"a\": \"b\"}}",
    "$ ls -la ~/.cache | grep -E '^d' && echo \"done\" || exit 1",
    "    indented\n        more\n\t\ttabs\n  \t mixed \t  \n",
]

SCRIPTS = [
    "Ελληνικά: Η γρήγορη καφέ αλεπού.",                 # Greek
    "Русский: Съешь же ещё этих мягких французских булок.",  # Cyrillic
    "Українська: Чуєш їх, доцю, га?",                      # Cyrillic (Ukrainian)
    "עברית: דג סקרן שט בים מאוכזב",                       # Hebrew
    "العربية: نص حكيم له سر قاطع وذو شأن عظيم",            # Arabic
    "فارسی: به نام خداوند جان و خرد",                     # Persian
    "हिन्दी: ऋषियों को सताने वाले दुष्ट राक्षसों के राजा",    # Devanagari
    "বাংলা: আমি বাংলায় গান গাই",                          # Bengali
    "ਪੰਜਾਬੀ: ਸਤ ਸ੍ਰੀ ਅਕਾਲ",                                # Gurmukhi
    "தமிழ்: யாமறிந்த மொழிகளிலே",                          # Tamil
    "తెలుగు: దేశ భాషలందు తెలుగు లెస్స",                     # Telugu
    "ไทย: เป็นมนุษย์สุดประเสริฐเลิศคุณค่า",                   # Thai
    "ລາວ: ສະບາຍດີ",                                         # Lao
    "ქართული: ვეპხის ტყაოსანი",                            # Georgian
    "Հայերեն: Բարեւ աշխարհ",                               # Armenian
    "አማርኛ: ሰላም ለዓለም",                                    # Ethiopic
    "中文：我能吞下玻璃而不伤身体。繁體字與简体字",              # Han
    "日本語：いろはにほへと ちりぬるを カタカナ ﾊﾝｶｸ",          # Hiragana, Katakana, half-width
    "한국어: 다람쥐 헌 쳇바퀴에 타고파",                       # Hangul
    "Tiếng Việt: Tôi có thể ăn thủy tinh mà không hại gì.",  # Latin with stacked diacritics
    "Türkçe: Pijamalı hasta yağız şoföre çabucak güvendi.",  # Turkish dotless i
    "Deutsch: Falsches Üben von Xylophonmusik quält jeden größeren Zwerg. STRASSE ß ẞ",
    "Español: ¿Dónde está el niño? ¡Ahí!  Français: Où êtes-vous, cœur œuvre?",
    "ᠮᠣᠩᠭᠣᠯ ᠪᠢᠴᠢᠭ᠌ ᚠᚢᚦᚨᚱᚲ ᏣᎳᎩ ꦗꦮ 𐌰𐌱𐌲 𓂀𓃰 ⠓⠑⠇⠇⠕",          # Mongolian, runes, Cherokee, Javanese, Gothic, hieroglyphs, Braille
    "Mathematical: ∀x∈ℝ: x²≥0, ∑ᵢ aᵢ ≤ ∫₀^∞ f(t) dt, 𝔸𝕓𝖈𝗱, ½ ⅓ ¾, Ⅻ",
    "Combining: e\u0301 a\u0308\u0304 Z\u0351\u0352\u0353 ﬁ ligature, \ufeffBOM, zero\u200bwidth",
]

EMOJI = [
    "👩‍👩‍👧‍👦 family, 👨🏽‍💻 technologist, 🏳️‍🌈 flag, 🧑🏿‍🤝‍🧑🏻 holding hands",
    "🇫🇷🇯🇵🇺🇸🇧🇷 flags, 🏴󠁧󠁢󠁳󠁣󠁴󠁿 Scotland (tag sequence), ❤️‍🔥 heart on fire",
    "keycaps 1️⃣ #️⃣ *️⃣, skin tones 👍🏻👍🏼👍🏽👍🏾👍🏿, 😀😃😄😁😆😅🤣😂🙂🙃",
]

WHITESPACE = [
    " ", "  ", "   leading", "trailing   ", "a \t b", "\t\t", "\n", "\n\n\n", "\r\n", "\r\r\n\n",
    "word\n", "word \n", "word  \n\n  next", " \n \n ", "\x0b\x0c vertical tab, form feed",
    "\u00a0nbsp\u00a0\u00a0", "\u2003em\u2002en\u2009thin\u200ahair\u3000ideographic",
    "\u2028line sep\u2029para sep\u0085next line", "\u1680ogham\u180emongolian vs",
    "end with spaces   ", "end with newline spaces\n   ", "   \t\n\r   ",
]

DIGITS = [
    "1", "12", "123", "1234", "12345", "1234567", "1234567890123", "3.14159265358979",
    "1,000,000 and 1_000_000 and 1e10", "0x1F 0b1010 0o17", "٠١٢٣٤٥٦٧٨٩ Arabic-Indic",
    "१२३४ Devanagari digits, ①②③ circled, ¹²³ superscript", "2024-01-31T23:59:59Z",
    "phone +1 (555) 123-4567", "a1b22c333d4444", "version 1.2.3-rc.4+build.5",
]

CONTRACTIONS = [
    "don't DON'T Don't dOn'T", "I'm I'M i'm", "you're YOU'RE You'Re", "we've WE'VE We'Ve",
    "she'll SHE'LL She'Ll", "he'd HE'D He'D", "it's IT'S It'S", "can't won't shan't",
    "'s 's 'S 'll 'LL 're 'RE 've 'VE 'm 'M 'd 'D 't 'T", "rock'n'roll o'clock y'all'd've",
    "the dog's bone, the dogs' bones", "’s curly apostrophe’s not a contraction",
]

SPECIAL_IN_TEXT = [
    "<|begin_of_text|>Hello<|eot_id|>",
    "no space<|eot_id|>after, and <|end_of_text|> spaced",
    "half <|eot_id and <eot_id|> and <|unknown_token|> stay text",
    "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    "word<|reserved_special_token_200|>word<|reserved_special_token_5|><|eot_id|><|eot_id|>",
    "<<|eot_id|>> |<|eot_id|>| <|<|eot_id|>|>",
]


def random_byte_strings(count: int, seed: int = 0) -> list[str]:
    """Random bytes (biased towards UTF-8 lead and continuation bytes) decoded with replacement."""
    rng = random.Random(seed)
    pool = list(range(256)) + list(range(0x80, 0xC0)) * 2 + list(range(0xC2, 0xF5)) * 2
    return [bytes(rng.choice(pool) for _ in range(rng.randint(1, 40))).decode("utf-8", "replace")
            for _ in range(count)]


def mixed_strings(count: int, seed: int = 1) -> list[str]:
    """Random joins of pieces of the corpus, to put every kind of text next to every other."""
    rng = random.Random(seed)
    pieces = PROSE + CODE + SCRIPTS + EMOJI + WHITESPACE + DIGITS + CONTRACTIONS + SPECIAL_IN_TEXT
    out = []
    for _ in range(count):
        chosen = [rng.choice(pieces) for _ in range(rng.randint(2, 5))]
        cut = [p[rng.randint(0, len(p)):] if rng.random() < 0.5 else p for p in chosen]
        out.append(rng.choice(["", " ", "\n", "\t", ""]).join(cut))
    return out


def corpus() -> list[str]:
    """The fixed corpus: every list above, random bytes, and random mixtures."""
    return (PROSE + CODE + SCRIPTS + EMOJI + WHITESPACE + DIGITS + CONTRACTIONS + SPECIAL_IN_TEXT
            + random_byte_strings(200) + mixed_strings(400))


# Training text for test vocabularies: the corpus without special tokens, repeated a little so
# that merges cover every script, plus the whole of it once as one block.
TRAINING_TEXT = "\n".join((PROSE + CODE + SCRIPTS + EMOJI + DIGITS + CONTRACTIONS) * 3
                          + mixed_strings(200, seed=7)).replace("<|", "< |")
