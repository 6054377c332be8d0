"""A second QA target for the transfer bench, with unanswerable questions: Molweni (Li et al., COLING 2020),
extractive QA over multiparty Ubuntu IRC chat, SQuAD 2.0 JSON with `is_impossible` and `plausible_answers`.
It writes the three target files the bench's current target has (bench/qa/target_*.json), same layout:

    git clone https://github.com/HIT-SCIR/Molweni /tmp/Molweni
    git -C /tmp/Molweni show '2eb681d7e610ee3fda4ab3b4cc364554bd17ee67:MRC(withDiscourse)/test.json' \
        > /tmp/molweni_test.json
    python bench/qa/molweni/cut.py /tmp/molweni_test.json

- Only Molweni's MRC *test* file could be read (100 dialogues, 2,871 questions): the train.json and dev.json
  blobs that the repository's trees name were in no commit of the snapshot this was cut from (main and the
  pull-request refs checked; NOTICE.md lists them). So all three target files are cut from that one file,
  which is checked by its git blob hash.
- The 100 dialogues are not independent: they are variants of 54 source conversations (the same utterances,
  some dropped or reordered, in up to 5 dialogues each). Splitting by dialogue would put the same chat lines
  in train and test, and the pipeline's leakage guard (keyed on question + context) would not see it, since
  the contexts differ. So dialogues sharing any utterance are joined into one conversation (union-find), and
  whole conversations are drawn with the seed: train until TARGET_SIZES["train"] questions (the pipeline labels
  data.target_train_labeled=200 of them; the rest are unlabeled text), then validation, then test takes the rest.
- Text is kept exactly (Molweni's contexts are lowercased and tokenised, "it 's"; its questions are not).
  Every answer (and plausible answer) must sit at its answer_start; a question whose answer does not is
  dropped and counted. Exact repeats of (context, question) within a dialogue keep the first and are counted.
- Each conversation is one SQuAD article (title `c07`), its dialogues the paragraphs: evaluate's bootstrap
  draws whole articles, so the variants of one conversation are resampled together.
- Molweni's discourse annotations (`edus`, `relations`) are not written: the SQuAD reader does not use them.

Licence, citation and counts: bench/qa/molweni/NOTICE.md.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 42
SOURCE_COMMIT = "2eb681d7e610ee3fda4ab3b4cc364554bd17ee67"
SOURCE_PATH = "MRC(withDiscourse)/test.json"
SOURCE_BLOB = "857dd9625e95ef3daae7377b4da25f5e01a8bae0"  # git hash-object of that file at SOURCE_COMMIT
VERSION = f"molweni-1.0-mrc-test@{SOURCE_COMMIT[:7]}"
# train: 200 of them labeled (data.target_train_labeled), the rest unlabeled text; test: every other conversation
TARGET_SIZES = {"train": 900, "validation": 200}
QA_KEYS = ("question", "id", "answers", "is_impossible", "plausible_answers")


def git_blob_hash(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def misplaced(context: str, answers: list[dict]) -> bool:
    return any(context[a["answer_start"]:a["answer_start"] + len(a["text"])] != a["text"] for a in answers)


def clean_dialogue(dialogue: dict, counts: Counter) -> list[dict]:
    """The dialogue's questions that can be scored, first copy of each exact repeat."""
    context, kept, seen = dialogue["context"], [], {}
    for qa in dialogue["qas"]:
        counts["questions_in"] += 1
        if misplaced(context, qa["answers"]) or bool(qa["is_impossible"]) != (not qa["answers"]):
            counts["dropped_answer_not_at_answer_start_or_inconsistent"] += 1
            continue
        if misplaced(context, qa.get("plausible_answers", [])):
            counts["plausible_answer_not_at_answer_start_kept"] += 1
        if qa["question"] in seen:
            first = seen[qa["question"]]
            counts["dropped_exact_repeat"] += 1
            if first["is_impossible"] != qa["is_impossible"]:
                counts["dropped_exact_repeat_answerability_differed"] += 1
            elif first["answers"] != qa["answers"]:
                counts["dropped_exact_repeat_answer_differed"] += 1
            continue
        seen[qa["question"]] = qa
        kept.append({k: qa[k] for k in QA_KEYS if k in qa})
    return kept


def conversations(dialogues: list[dict]) -> list[list[int]]:
    """Dialogue indices grouped by shared utterance text (connected components), in index order."""
    parent = list(range(len(dialogues)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_seen: dict[str, int] = {}
    for i, dialogue in enumerate(dialogues):
        for edu in dialogue["edus"]:
            j = first_seen.setdefault(edu["text"], i)
            parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(dialogues)):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values())


def write(name: str, articles: list[dict]) -> dict:
    path = HERE / f"{name}.json"
    path.write_text(json.dumps({"version": VERSION, "data": articles}, ensure_ascii=False) + "\n")
    qas = [q for a in articles for p in a["paragraphs"] for q in p["qas"]]
    unanswerable = sum(bool(q["is_impossible"]) for q in qas)
    stats = {"conversations": len(articles), "dialogues": sum(len(a["paragraphs"]) for a in articles),
             "questions": len(qas), "unanswerable": unanswerable,
             "unanswerable_share": round(unanswerable / len(qas), 4), "md5": hashlib.md5(path.read_bytes()).hexdigest()}
    print(f"{path.name}: {stats['conversations']} conversations, {stats['dialogues']} dialogues (= contexts), "
          f"{stats['questions']} questions ({unanswerable} unanswerable, {100 * unanswerable / len(qas):.1f}%), "
          f"md5 {stats['md5']}")
    return stats


def main(molweni_test: str) -> None:
    raw = Path(molweni_test).read_bytes()
    if (blob := git_blob_hash(raw)) != SOURCE_BLOB:
        sys.exit(f"{molweni_test}: git blob {blob}, expected {SOURCE_BLOB} ({SOURCE_PATH} @ {SOURCE_COMMIT})")
    dialogues = json.loads(raw)["data"]["dialogues"]
    counts: Counter = Counter()
    kept = [clean_dialogue(d, counts) for d in dialogues]
    groups = conversations(dialogues)

    order = list(range(len(groups)))
    random.Random(SEED).shuffle(order)
    chosen: dict[str, list[int]] = {}
    for split, size in [*TARGET_SIZES.items(), ("test", None)]:
        chosen[split] = []
        while order and (size is None or sum(len(kept[i]) for i in chosen[split]) < size):
            chosen[split].extend(groups[order.pop()])

    # no context and no chat line in two splits
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        lines = [{e["text"] for i in chosen[s] for e in dialogues[i]["edus"]} for s in (a, b)]
        assert not lines[0] & lines[1], (a, b)

    stats = {}
    for split, indices in chosen.items():
        # One article per conversation (title c07), its dialogues the paragraphs: the article is the unit
        # evaluate's bootstrap draws, and the variants of one conversation stand or fall together.
        articles = [{"title": f"c{c:02d}", "paragraphs": [{"context": dialogues[i]["context"], "qas": kept[i]}
                                                          for i in group if kept[i]]}
                    for c, group in enumerate(groups) if set(group) <= set(indices)]
        articles = [article for article in articles if article["paragraphs"]]
        stats[split] = write(f"target_{split}", articles)
    everything = sum(len(k) for k in kept)
    impossible = sum(q["is_impossible"] for k in kept for q in k)
    print(f"source: {len(dialogues)} dialogues in {len(groups)} conversations, {counts['questions_in']} questions; "
          f"kept {everything} ({impossible} unanswerable, {100 * impossible / everything:.1f}%)")
    print("counts:", json.dumps(dict(sorted(counts.items()))))
    (HERE / "cut_counts.json").write_text(json.dumps(
        {"source": {"repo": "HIT-SCIR/Molweni", "commit": SOURCE_COMMIT, "path": SOURCE_PATH, "blob": SOURCE_BLOB},
         "seed": SEED, "target_sizes": TARGET_SIZES, "input_dialogues": len(dialogues), "conversations": len(groups),
         "counts": dict(sorted(counts.items())), "kept_questions": everything, "kept_unanswerable": impossible,
         "splits": stats}, indent=2) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
