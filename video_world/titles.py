"""Video titles in English and Chinese: a subject from the category, plus (or not) a timeliness cue.

A title without evidence uses only subject and filler words, none of which hints at a class, so for
those clips only the picture can tell how long the video stays relevant.
"""

from __future__ import annotations

import numpy as np

#: Words that decide the timeliness class when the title carries the evidence.
CUE_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "hours": {"en": ("Breaking:", "LIVE NOW:", "Just in:", "Happening now:"), "zh": ("突发", "直播中", "刚刚")},
    "days": {"en": ("Today:", "Yesterday's", "This morning:", "Tonight:"), "zh": ("今天", "昨日", "今晚")},
    "weeks": {"en": ("This week:", "Season recap:", "Weekly:", "This month's"), "zh": ("本周", "本赛季", "本月")},
    "evergreen": {"en": ("How to:", "Review:", "Classic:", "Guide:"), "zh": ("教程", "经典", "评测")},
}

SUBJECTS: dict[str, dict[str, tuple[str, ...]]] = {
    "news": {"en": ("city council vote", "election results", "harbour bridge", "market report"),
             "zh": ("市议会投票", "选举结果", "港口大桥", "市场报道")},
    "sports": {"en": ("cup final", "penalty shootout", "derby match", "marathon finish"),
               "zh": ("杯赛决赛", "点球大战", "同城德比", "马拉松冲线")},
    "gaming": {"en": ("boss fight", "speedrun attempt", "ranked match", "pixel dungeon"),
               "zh": ("首领战", "速通挑战", "排位赛", "像素地牢")},
    "nature": {"en": ("river valley", "forest birds", "mountain sunrise", "wild meadow"),
               "zh": ("河谷", "林间飞鸟", "山间日出", "野花草甸")},
    "cooking": {"en": ("tomato soup", "stir fry noodles", "dumpling recipe", "bread baking"),
                "zh": ("番茄汤", "炒面", "饺子做法", "烤面包")},
    "music": {"en": ("jazz trio", "piano cover", "rock concert", "street singer"),
              "zh": ("爵士三重奏", "钢琴翻弹", "摇滚演唱会", "街头歌手")},
}

FILLERS: dict[str, tuple[str, ...]] = {
    "en": ("", "(full video)", "in HD", "- must watch", "| part 2", "with friends", "#shorts"),
    "zh": ("", "完整版", "高清", "必看", "第二集", "精彩片段"),
}


def make_title(category: str, cue_class: str | None, rng: np.random.Generator) -> str:
    """A title about ``category``; it names ``cue_class`` only if given (else it is neutral)."""
    language = "zh" if rng.random() < 0.35 else "en"
    subject = str(rng.choice(SUBJECTS[category][language]))
    filler = str(rng.choice(FILLERS[language]))
    cue = str(rng.choice(CUE_WORDS[cue_class][language])) if cue_class else ""
    if language == "zh":
        text = f"【{cue}】{subject}{filler}" if cue else f"{subject}{filler}"
    else:
        text = f"{cue} {subject} {filler}"
    return " ".join(text.split())
