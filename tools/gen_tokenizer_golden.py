#!/usr/bin/env python3
"""Generate tests/data/tokenizer/: a tokenizer corpus and llama.cpp's token ids for it.

Why: qlora's BPE tokenizer (include/qlora/text/) must give the same token ids
as llama.cpp on the same GGUF. Only SmolLM2's vocabulary is at hand, so to test
the Llama-3 and Qwen2 pre-tokenizers too, this script writes vocab-only GGUF
copies of SmolLM2 whose `tokenizer.ggml.pre` is "llama-bpe", "qwen2", "gpt-2"
or "default" (into a temp dir; they are not committed): llama.cpp then splits
text with those rules, and tests/text/bpe_tokenizer_test.cpp checks that qlora
gives the same ids for every corpus string.

Writes:
  corpus.jsonl             {"id", "text"} — 200+ strings: Japanese technical text
                           (河川砂防技術基準: levees, dams, sabo, hazard maps), kana,
                           kanji, full-width digits and punctuation, English, code,
                           numbers, emoji, whitespace runs, newlines, special tokens.
  expected_<pre>.jsonl     {"id", "ids", "ids_special"} — llama.cpp's
                           llama_tokenize(add_special=false) with parse_special
                           false / true, for pre in smollm, llama-bpe, qwen2,
                           gpt-2, default.
  chat_templates.json      conversations rendered with jinja2 from SmolLM2's own
                           GGUF template (and reference ChatML/Qwen2.5/Llama-3
                           templates), for tests/text/chat_template_test.cpp.
  splits_<pre>.jsonl       {"id", "pieces"} — the published pre-tokenizer regexes run
                           with Python's `regex` module (smollm, gpt-2, llama-bpe,
                           qwen2): an independent oracle for the split itself.
  MANIFEST.json            llama-cpp-python version, model file and sha256, counts,
                           and the sha256 of every token's piece (token_to_piece,
                           special=true) so the C++ test can check all 49152
                           pieces without storing them.

Usage: python3 tools/gen_tokenizer_golden.py [--model PATH] [--out DIR]
Deterministic: no timestamps, no absolute paths in the outputs.
"""
from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import struct
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
PRES = ["smollm", "llama-bpe", "qwen2", "gpt-2", "default"]


# ----------------------------------------------------------------------------- corpus
def build_corpus() -> list[str]:
    ja = [
        "河川砂防技術基準は、河川、砂防、地すべり、急傾斜地及び海岸の調査・計画・設計・維持管理の技術的事項を定めたものである。",
        "堤防の高さは、計画高水位に余裕高を加えた値以上とする。",
        "計画高水流量は、基本高水のピーク流量から洪水調節施設による調節量を差し引いて定める。",
        "ダムの洪水吐きは、設計洪水流量を安全に流下させることができる構造とする。",
        "砂防えん堤の袖部は、越流に対して安全な構造とし、袖天端は水通し天端より高くする。",
        "土石流危険渓流では、土砂災害警戒区域（イエローゾーン）の指定を行う。",
        "土砂災害特別警戒区域（レッドゾーン）では、一定の開発行為が制限される。",
        "ハザードマップには、浸水想定区域、避難場所、避難経路を示す。",
        "想定最大規模降雨（L2）に基づく洪水浸水想定区域図を作成する。",
        "堤防の浸透に対する安全性は、すべり破壊とパイピング破壊について照査する。",
        "護岸の基礎工は、河床洗掘に対して十分な根入れを確保する。",
        "流域治水とは、集水域と河川区域のみならず氾濫域も含めて一つの流域として捉える考え方である。",
        "ダム貯水池の堆砂容量は、100年間の推定堆砂量を基本とする。",
        "地すべり防止施設には、抑制工（排水工など）と抑止工（杭工、アンカー工）がある。",
        "急傾斜地崩壊防止施設として、擁壁工、法枠工、落石防護柵などを設ける。",
        "水位観測所のデータは、10分間隔でテレメータにより送信される。",
        "令和６年能登半島地震では、河道閉塞（天然ダム）が多数発生した。",
        "計画降雨の継続時間は、流域の洪水到達時間を考慮して設定する。",
        "設計津波の水位は、T.P.+3.5mとする。",
        "河川管理施設等構造令第20条に基づき、堤防の天端幅を定める。",
        "ひらがなだけのぶんしょうもただしくとーくんかできるかをたしかめる。",
        "カタカナダケノブンショウモタシカメル。ハザードマップ、シミュレーション、モニタリング。",
        "ｶﾞｲﾄﾞﾗｲﾝ（半角カナ）と全角英数字ＡＢＣ１２３の混在。",
        "全角数字：０１２３４５６７８９、全角記号：！？＃＄％＆（）＝～｜",
        "2026年11月1日に改定された基準では、第３章の内容が変更された。",
        "流量は1,234.5 m³/sで、前年比+12.3%であった。",
        "降雨強度は50mm/hを超え、累加雨量は300mmに達した。",
        "水位：3.45m（氾濫危険水位4.20m）",
        "「避難指示」が発令されたら、直ちに避難すること。",
        "【重要】警戒レベル４までに必ず避難！",
        "堤防天端の舗装は、雨水の浸透を防ぐ効果がある……と考えられる。",
        "※本資料は参考値であり、現地条件に応じて適宜修正すること。",
        "①調査 ②計画 ③設計 ④施工 ⑤維持管理",
        "Ⅰ．総則　Ⅱ．調査編　Ⅲ．計画編　Ⅳ．設計編",
        "国土交通省 水管理・国土保全局 砂防部",
        "砂防堰堤（sabo dam）は、土石流（debris flow）を捕捉する。",
        "The levee (堤防) height is 5.0 m above the design flood level (計画高水位).",
        "Q: 砂防とは何ですか？\nA: 土砂災害を防止・軽減するための対策です。",
        "問１　次の語句を説明せよ。\n（１）計画高水位\n（２）余裕高\n（３）天端幅",
        "表-3.2 堤防の余裕高\n計画高水流量(m³/s)\t余裕高(m)\n200未満\t0.6\n200以上500未満\t0.8",
        "水防警報は、待機・準備・出動・解除の４段階である。",
        "踏査の結果、渓床には巨礫（φ1,000mm以上）が堆積していた。",
        "東京都千代田区霞が関２丁目１番３号",
        "〒100-8918　電話：03-5253-8111",
        "日本語の文章の中に English words と数字 42 が混ざる。",
        "約３０００万ｍ３の土砂が流出した。",
        "年超過確率1/100の洪水に対応する。",
        "緊急放流（異常洪水時防災操作）の実施を通知する。",
        "漢字の異体字：髙、﨑、𠮷（サロゲートペア）",
        "々〆〇ヶヵ゛゜ゝゞヽヾ",
    ]
    en = [
        "Hello, world!",
        "The quick brown fox jumps over the lazy dog.",
        "It's a levee; they're building dams, we've seen sabo works, I'm sure, you'll see, he'd agree.",
        "IT'S LOUD. THEY'RE HERE. WE'VE GOT IT. I'M OK. YOU'LL SEE. HE'D GO. DON'T.",
        "Mixed case: It'S, we'Ve, They'Re, I'M, you'Ll, he'D",
        "rock'n'roll isn't 'quoted' text",
        "'s 't 're 've 'm 'll 'd at the start",
        "Hazard maps show inundation depth (0.5-3.0 m) and evacuation routes.",
        "Design flood discharge: Q = 1,234.5 m^3/s at the reference point.",
        "Numbers: 0 1 12 123 1234 12345 123456 1234567 3.14159 -42 +7 1e-5 0x1F",
        "Version 2.0.1-beta+build.42 released on 2026-11-01T09:30:00Z.",
        "Price: $1,299.99 (20% off) — was €1,624.99 / £1,400",
        "Email: sabo@example.go.jp, URL: https://www.mlit.go.jp/river/index.html",
        "C:\\Program Files\\qlora\\bin\\qlora.exe --model smollm2.gguf",
        "   leading spaces",
        "trailing spaces   ",
        "multiple    internal     spaces",
        "tabs\tand\t\ttabs",
        "line1\nline2\n\nline4\n\n\n",
        "windows\r\nline\r\nendings\r\n",
        "\n\n\nleading newlines",
        " \n \n mixed space newline \n",
        "a  \n  b",
        "end with space ",
        " ",
        "  ",
        "\n",
        "\t",
        "x",
        "!",
        "...",
        "?!?!",
        "@#$%^&*()_+-={}[]|\\:;\"'<>,./?~`",
        "CamelCaseIdentifier snake_case_identifier SCREAMING_CASE kebab-case",
        "naïve café résumé façade coöperate",
        "Ελληνικά Русский العربية עברית हिन्दी ไทย 한국어",
        "Combining: e\u0301 a\u0308 n\u0303 (decomposed)",
        "Zero\u200bwidth\u200cjoiners\u200d and BOM\ufeff inside",
        "Non-breaking\u00a0space, thin\u2009space, ideographic\u3000space, NEL\u0085end",
        "Line\u2028separator and paragraph\u2029separator",
        "Superscripts x² y³ and fractions ½ ¾, roman Ⅻ ⅷ, circled ⑩",
        "Unassigned \u0378 and private use \ue000 code points",
        "Unicode 15.1 CJK Ext I: \U0002ebf0\U0002ebf1 and Ext H: \U00031350",
        "Emoji: 😀 🎉 👍🏽 👨‍👩‍👧‍👦 🇯🇵 ❤️ ⚠️",
        "Math: ∑_{i=1}^{n} x_i ≤ ∫ f(x) dx ≈ π·r² ≠ ∞",
        "Arrows → ← ↑ ↓ ⇒ and boxes ■□▲△●○",
        "Kelvin sign: 'K and dotted I: 'İ (case folding edge cases)",
    ]
    code = [
        "def tokenize(text: str) -> list[int]:\n    return [ord(c) for c in text]\n",
        "for (int i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];\n}",
        "#include <vector>\nint main() { std::vector<int> v{1, 2, 3}; return v.size(); }",
        '{"river": "利根川", "length_km": 322, "basin_km2": 16840, "dams": ["八ッ場ダム", "藤原ダム"]}',
        "SELECT name, height_m FROM levees WHERE height_m > 5.0 ORDER BY name;",
        "    indented four\n        indented eight\n",
        "if x == 1:\n    pass\nelif x != 2:\n    raise ValueError('bad')",
        "<html><body><p>洪水</p></body></html>",
        "$ ./qlora tokenize --model SmolLM2.gguf \"河川\"",
        "a=b+c-d*e/f%g^h|i&j~k<l>m",
    ]
    special = [
        "<|im_start|>user\n堤防の余裕高とは何ですか？<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n",
        "text before<|endoftext|>text after",
        "<|im_end|><|im_end|>",
        "partial <|im_start and |im_end|> are not special",
        "<|im_start|>",
        "nested <<|im_start|>|> brackets",
        "<repo_name>qlora<file_sep>tools/gen.py<jupyter_code>print(1)<empty_output>",
        "<|IM_START|> is not special (case differs)",
        " <|im_end|> spaced ",
    ]
    corpus = ja + en + code + special
    # Combinations: Japanese + English + numbers in varied layouts.
    topics = ["堤防", "ダム", "砂防えん堤", "ハザードマップ", "遊水地", "排水機場", "放水路", "床止め"]
    verbs = ["を点検する", "の設計基準", "に関する留意事項", "の耐震性能照査", "の維持管理計画"]
    nums = ["1", "12", "123", "1,234", "12345", "３", "１２", "１２３", "0.5", "2026年11月", "第3条", "L1/L2"]
    i = 0
    for t in topics:
        for v in verbs:
            n = nums[i % len(nums)]
            sep = ["", " ", "\n", "　", "  ", "\t"][i % 6]
            corpus.append(f"{t}{v}{sep}({n}){sep}Check {t} item {n}.")
            i += 1
    for k in range(50):
        corpus.append(" " * (k % 5) + "堤防" * (k % 3 + 1) + "\n" * (k % 4) + "levee" + "!" * (k % 3) + str(10 ** (k % 8)) + " " * (k % 3))
    # A long paragraph (exercises the word cache and long pieces).
    corpus.append("\n".join(ja[:20]) + "\n\n" + " ".join(en[:10]))
    corpus.append("")  # empty string
    return corpus


# ----------------------------------------------------------------------------- GGUF copies
def write_vocab_copy(src: Path, dst: Path, pre: str) -> None:
    """A tensor-less GGUF with every KV of `src` but tokenizer.ggml.pre = pre."""
    from gguf import GGUFReader, GGUFValueType, GGUFWriter

    r = GGUFReader(str(src))
    arch = r.fields["general.architecture"].contents()
    w = GGUFWriter(str(dst), arch=arch)
    for key, f in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        val = pre if key == "tokenizer.ggml.pre" else f.contents()
        vtype = f.types[0]
        sub = f.types[1] if vtype == GGUFValueType.ARRAY else None
        w.add_key_value(key, val, vtype, sub_type=sub)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ----------------------------------------------------------------------------- llama.cpp calls
def tokenize_all(model: Path, corpus: list[str]) -> tuple[list[list[int]], list[list[int]], str, float]:
    import time

    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(model), vocab_only=True, verbose=False)
    ids = [llm.tokenize(t.encode(), add_bos=False, special=False) for t in corpus]
    ids_sp = [llm.tokenize(t.encode(), add_bos=False, special=True) for t in corpus]
    # pieces of every token (special = true), hashed
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    n = llama_cpp.llama_vocab_n_tokens(vocab)
    h = hashlib.sha256()
    buf = ctypes.create_string_buffer(1024)
    for t in range(n):
        k = llama_cpp.llama_token_to_piece(vocab, t, buf, len(buf), 0, True)
        assert k >= 0
        h.update(struct.pack("<I", k) + buf.raw[:k])
    # speed: the corpus x100 through the C function llama_tokenize (report
    # only; one ctypes call per string, output buffer allocated once)
    texts = [t.encode() for t in corpus]
    out = (llama_cpp.llama_token * 65536)()
    t0 = time.perf_counter()
    ntok = 0
    for _ in range(100):
        for b in texts:
            ntok += llama_cpp.llama_tokenize(vocab, b, len(b), out, 65536, False, False)
    dt = time.perf_counter() - t0
    return ids, ids_sp, h.hexdigest(), ntok / dt


# ----------------------------------------------------------------------------- reference splits
# The pre-tokenizer regexes as published in the models' tokenizer.json, run with
# the third-party `regex` module (it supports \p{..} and (?i:..)). An
# independent oracle for qlora's hand-written matchers, next to llama.cpp's ids.
GPT2_PAT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PAT = LLAMA3_PAT.replace(r"\p{N}{1,3}", r"\p{N}")


def isolate(pieces: list[str], pat) -> list[str]:
    """Split every piece at the matches of `pat`, keeping matches and gaps."""
    out = []
    for p in pieces:
        last = 0
        for m in pat.finditer(p):
            if m.start() > last:
                out.append(p[last:m.start()])
            if m.end() > m.start():
                out.append(m.group())
            last = m.end()
        if last < len(p):
            out.append(p[last:])
    return out


def reference_splits(text: str, pre: str) -> list[str]:
    import regex

    pieces = [text] if text else []
    if pre == "smollm":  # Split(Digits, individual_digits=True) then ByteLevel's GPT-2 regex
        pieces = isolate(pieces, regex.compile(r"\p{N}"))
        return isolate(pieces, regex.compile(GPT2_PAT))
    if pre == "gpt-2":
        return isolate(pieces, regex.compile(GPT2_PAT))
    if pre == "llama-bpe":
        return isolate(pieces, regex.compile(LLAMA3_PAT))
    if pre == "qwen2":
        return isolate(pieces, regex.compile(QWEN2_PAT))
    raise ValueError(pre)


# ----------------------------------------------------------------------------- chat templates
# Reference templates other than SmolLM2's own (which is read from the GGUF).
# Qwen2.5-Instruct: the no-tools branch of its tokenizer_config.json template.
QWEN25_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if (message.role == 'user') or (message.role == 'system' and not loop.first) or (message.role == 'assistant') %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
# Meta-Llama-3-8B-Instruct (used by Llama-3-Swallow and Llama-3-ELYZA-JP).
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)

CONVERSATIONS = [
    [{"role": "user", "content": "堤防の余裕高とは何ですか？"}],
    [{"role": "user", "content": "堤防の余裕高とは何ですか？"},
     {"role": "assistant", "content": "計画高水位に加える高さの余裕です。"}],
    [{"role": "system", "content": "あなたは河川砂防技術基準の専門家です。"},
     {"role": "user", "content": "砂防えん堤の目的は？"},
     {"role": "assistant", "content": "土石流を捕捉し、下流の被害を防ぐことです。"}],
    [{"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hi. How can I help?"},
     {"role": "user", "content": "  Explain hazard maps.\n"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2026年11月の改定点は？"}],
]


def render_templates(model: Path) -> dict:
    import jinja2
    from gguf import GGUFReader

    smol = GGUFReader(str(model)).fields["tokenizer.chat_template"].contents()
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)  # as transformers does
    out = {"note": "rendered with jinja2 " + jinja2.__version__ + " (trim_blocks, lstrip_blocks, as transformers)",
           "templates": {}, "cases": []}
    srcs = {"smollm2": (smol, "<|endoftext|>", "<|im_end|>"),
            "qwen2.5": (QWEN25_TEMPLATE, "", "<|im_end|>"),
            "llama3": (LLAMA3_TEMPLATE, "<|begin_of_text|>", "<|eot_id|>")}
    for name, (src, _, _) in srcs.items():
        out["templates"][name] = src
    for ci, conv in enumerate(CONVERSATIONS):
        for name, (src, bos, eos) in srcs.items():
            for agp in (False, True):
                text = env.from_string(src).render(messages=conv, add_generation_prompt=agp, bos_token=bos,
                                                   eos_token=eos)
                out["cases"].append({"template": name, "conversation": ci, "add_generation_prompt": agp,
                                     "text": text})
    out["conversations"] = CONVERSATIONS
    return out


# ----------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--out", type=Path, default=ROOT / "tests/data/tokenizer")
    args = ap.parse_args()
    import llama_cpp

    if not args.model.exists():
        sys.exit(f"{args.model}: not found (tools/fetch_model.sh downloads it)")
    args.out.mkdir(parents=True, exist_ok=True)
    corpus = build_corpus()
    assert len(corpus) >= 200, len(corpus)
    with open(args.out / "corpus.jsonl", "w", encoding="utf-8") as f:
        for i, t in enumerate(corpus):
            f.write(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n")

    manifest = {
        "generator": "tools/gen_tokenizer_golden.py",
        "llama_cpp_python": llama_cpp.__version__,
        "model": args.model.name,
        "model_sha256": hashlib.sha256(args.model.read_bytes()).hexdigest(),
        "corpus_strings": len(corpus),
        "pre_tokenizers": {},
        "note": "ids are llama_tokenize(add_special=false); copies other than smollm are vocab-only GGUFs "
                "with SmolLM2's vocabulary and merges and tokenizer.ggml.pre replaced",
    }
    with tempfile.TemporaryDirectory() as tmp:
        for pre in PRES:
            if pre == "smollm":
                path = args.model
            else:
                path = Path(tmp) / f"smollm2-vocab-{pre}.gguf"
                write_vocab_copy(args.model, path, pre)
            ids, ids_sp, piece_hash, tps = tokenize_all(path, corpus)
            with open(args.out / f"expected_{pre}.jsonl", "w", encoding="utf-8") as f:
                for i in range(len(corpus)):
                    f.write(json.dumps({"id": i, "ids": ids[i], "ids_special": ids_sp[i]}) + "\n")
            manifest["pre_tokenizers"][pre] = {
                "file": f"expected_{pre}.jsonl",
                "tokens": sum(len(x) for x in ids),
                "pieces_sha256": piece_hash,
            }
            print(f"{pre}: {sum(len(x) for x in ids)} tokens; llama.cpp {tps:,.0f} tokens/s (corpus x100)")
    import regex

    manifest["reference_splits"] = {"python_regex_module": regex.__version__, "files": []}
    for pre in ["smollm", "gpt-2", "llama-bpe", "qwen2"]:
        name = f"splits_{pre}.jsonl"
        with open(args.out / name, "w", encoding="utf-8") as f:
            for i, t in enumerate(corpus):
                f.write(json.dumps({"id": i, "pieces": reference_splits(t, pre)}, ensure_ascii=False) + "\n")
        manifest["reference_splits"]["files"].append(name)
    (args.out / "chat_templates.json").write_text(
        json.dumps(render_templates(args.model), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    (args.out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
