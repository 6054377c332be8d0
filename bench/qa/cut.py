"""The QA transfer pair's files (bench/qa/*.json), cut from two public SQuAD-format corpora; whole articles
go to one split, so no passage is in two of them (the pipeline's leakage guard would drop such questions).

    python bench/qa/cut.py SQUAD2_DEV_JSON SQUADSHIFTS_AMAZON_JSON

- source: SQuAD 2.0 (Wikipedia, 52% unanswerable), the 16-article half of its public dev set that CS224N
  distributes (github.com/chrischute/squad, data/dev-v2.0.json @ 85623ad): 13 articles for train, 3 for
  validation.
- target: SquadShifts' Amazon product reviews (Miller et al. 2020; github.com/albertvillanova/squadshifts-website,
  datasets/amazon_reviews_v1.0.json @ b7cc4d5; every question answerable, 2-4 reference answers): articles
  drawn with the seed until each split has its questions: TARGET_SIZES.

Licences and citations: bench/qa/NOTICE.md.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 42
SOURCE_VALIDATION_ARTICLES = 3
# train: 200 of them labeled (data.target_train_labeled), the rest unlabeled text; test: tight enough intervals
TARGET_SIZES = {"train": 1000, "validation": 200, "test": 1000}


def questions(article: dict) -> int:
    return sum(len(paragraph["qas"]) for paragraph in article["paragraphs"])


def write(name: str, articles: list[dict], version: str) -> None:
    path = HERE / f"{name}.json"
    path.write_text(json.dumps({"version": version, "data": articles}, ensure_ascii=False) + "\n")
    contexts = [p for a in articles for p in a["paragraphs"]]
    qas = [q for p in contexts for q in p["qas"]]
    unanswerable = sum(bool(q.get("is_impossible")) for q in qas)
    print(f"{path.name}: {len(articles)} articles, {len(contexts)} contexts, {len(qas)} questions "
          f"({unanswerable} unanswerable), md5 {hashlib.md5(path.read_bytes()).hexdigest()}")


def main(squad2_dev: str, amazon: str) -> None:
    source = json.loads(Path(squad2_dev).read_text())["data"]
    random.Random(SEED).shuffle(source)
    write("source_train", source[SOURCE_VALIDATION_ARTICLES:], "v2.0")
    write("source_validation", source[:SOURCE_VALIDATION_ARTICLES], "v2.0")

    target = json.loads(Path(amazon).read_text())["data"]
    random.Random(SEED).shuffle(target)
    for split, size in TARGET_SIZES.items():
        chosen = []
        while sum(map(questions, chosen)) < size:
            chosen.append(target.pop())
        write(f"target_{split}", [{k: a[k] for k in ("title", "paragraphs")} for a in chosen], "squadshifts-amazon-1.0")


if __name__ == "__main__":
    main(*sys.argv[1:])
