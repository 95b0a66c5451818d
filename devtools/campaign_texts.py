"""A generated set for campaign detection: paraphrased campaign texts mixed with ordinary
comments, each labelled, and the detection replayed over it in memory (the sketches, bands
and threshold of service/moderation/campaigns.py, the store's role played by a dict) to give
precision and recall. Used by tests/test_campaigns.py and bench/campaign_bench.py."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

from service.moderation import campaigns

CAMPAIGNS = (
    "Vote NO on measure {n}: it will {raise} your taxes and {destroy} local jobs. "
    "Tell the council {today} before it is too late!",
    "The mayor has {lied} about the stadium deal. {Read} the documents yourself at "
    "stadium-truth dot org and {share} them with your neighbours.",
    "This newspaper {hides} the truth about the vaccine trial. {Everyone} who reads this "
    "should ask why the {results} were never published in full.",
    "{Stop} the bypass! The new road will {cut} the nature reserve in half and bring "
    "{thousands} of lorries past the primary school every day.",
)
SYNONYMS = {
    "raise": ["raise", "increase", "push up"],
    "destroy": ["destroy", "kill", "wipe out"],
    "today": ["today", "now", "this week"],
    "lied": ["lied", "not told the truth", "misled everyone"],
    "Read": ["Read", "Look at", "Check"],
    "share": ["share", "send", "forward"],
    "hides": ["hides", "is hiding", "covers up"],
    "Everyone": ["Everyone", "Anyone", "Each of you"],
    "results": ["results", "findings", "data"],
    "Stop": ["Stop", "Block", "Say no to"],
    "cut": ["cut", "split", "slice"],
    "thousands": ["thousands", "hundreds", "a flood"],
}
WORDS = (
    "the council budget library station parking bus route delay residents plan school road "
    "article interesting point agree disagree think people town week year good bad really "
    "local history weather football match team coach season ticket price shop market river "
    "bridge festival music summer garden park tree children teacher hospital doctor nurse"
).split()
FILLERS = ["Honestly,", "Please,", "Friends:", "Listen.", "", "", ""]


@dataclass(frozen=True)
class Labelled:
    text: str
    author: str
    campaign: int | None  # which campaign it belongs to, None for an ordinary comment


def paraphrase(rng: random.Random, template: str) -> str:
    text = template.format(
        n=rng.choice([12, 12, 12, 7]), **{k: rng.choice(v) for k, v in SYNONYMS.items()}
    )
    words = text.split()
    if rng.random() < 0.5:  # drop a word
        del words[rng.randrange(len(words))]
    if rng.random() < 0.5:  # add one
        words.insert(rng.randrange(len(words)), rng.choice(WORDS))
    text = " ".join(words)
    if rng.random() < 0.3:
        text = text.upper()
    return f"{rng.choice(FILLERS)} {text}".strip()


def ordinary(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 40))).capitalize() + "."


def generated(seed: int = 7, ordinary_count: int = 600, per_campaign: int = 25) -> list[Labelled]:
    rng = random.Random(seed)
    items = [Labelled(ordinary(rng), f"reader{i}", None) for i in range(ordinary_count)]
    for c, template in enumerate(CAMPAIGNS):
        items += [
            Labelled(paraphrase(rng, template), f"sock{c}-{i}", c) for i in range(per_campaign)
        ]
    rng.shuffle(items)
    return items


@dataclass(frozen=True)
class Scores:
    flagged: int
    true_positives: int
    should_flag: int

    @property
    def precision(self) -> float:
        return self.true_positives / self.flagged if self.flagged else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.should_flag if self.should_flag else 1.0


def replay(items: list[Labelled], threshold: int = 3) -> Scores:
    """The detection over the items in order, by the rule itself (campaigns.detect on what
    campaigns.recent reads from each band, as the insert script does; every item within the
    window): a comment is flagged when earlier similar ones come from ``threshold - 1`` other
    authors. It should be when it is at least the ``threshold``-th of its campaign."""
    index: dict[str, list[str]] = defaultdict(list)
    sketches: dict[str, str] = {}
    seen_of: dict[int, int] = defaultdict(int)
    flagged = true_positives = should = 0
    for n, item in enumerate(items):
        signature = campaigns.sketch(item.text)
        if item.campaign is not None:
            seen_of[item.campaign] += 1
            should += seen_of[item.campaign] >= threshold
        if signature is None:
            continue
        encoded = campaigns.encode(signature)
        scores = campaigns.band_fields(encoded)
        comment_id = f"{n:026d}"
        met = [campaigns.recent(index[s], "", campaigns.CANDIDATES_PER_BAND) for s in scores]
        if campaigns.detect(comment_id, item.author, encoded, met, sketches, threshold) is not None:
            flagged += 1
            true_positives += item.campaign is not None
        for s in scores:
            index[s].append(comment_id)
        sketches[comment_id] = campaigns.sketch_entry(item.author, encoded)
    return Scores(flagged, true_positives, should)
