"""Do the default run's claims survive another seed? The headline of runs that differ only in `seed`.

    dvc exp run -S seed=43          # in a project that ran the default; then save its metrics/eval.json
    python bench/seed_reruns.py --runs 42=runs/42/eval.json 43=runs/43/eval.json 44=runs/44/eval.json

`seed` moves everything the run draws: the source subsample, the labeled target subset, TAPT, the source
phase, both arms' training seeds (seed + finetune.seed_offsets). Each run's headline (both arms' mean ± std
over their training seeds, the gain with its interval, `significant`, what each arm chose) goes into
bench/seed_reruns.json and a table in bench/seed_reruns.md; the check: every gain a run calls significant
keeps its sign in every other run. Not a test: it reads what the runs wrote.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transfer.tasks.registry import get_task  # noqa: E402

ARMS = ("target", "baseline")


def headline(evaluation: dict) -> dict:
    """What a run's report claims, from its metrics/eval.json."""
    primary = get_task(evaluation.get("task", "classification")).primary
    arms = {arm: {"mean": evaluation[arm][primary], "std": evaluation[arm].get(f"{primary}_std", 0.0),
                  "seeds": {seed: result[primary] for seed, result in evaluation[arm]["seeds"].items()},
                  "learning_rate": evaluation[arm].get("learning_rate"),
                  "best_epoch": evaluation[arm].get("best_epoch"),
                  "logit_adjustment": evaluation[arm].get("logit_adjustment")} for arm in ARMS}
    return {"strategy": evaluation["strategy"], "metric": primary, **arms,
            "gain_points": evaluation[f"gain_{primary}_points"], "gain_ci95_points": evaluation["gain_ci95_points"],
            "significant": evaluation["significant"], "warnings": evaluation.get("warnings", [])}


def sign_check(headlines: dict[str, dict]) -> dict:
    """Each significant gain against the sign of every run's gain: it survives where all agree (a gain of
    exactly 0 does not keep a sign)."""
    claimed = {seed: h["gain_points"] for seed, h in headlines.items() if h["significant"]}
    failures = [f"seed {seed}: {h['gain_points']:+.2f} against seed {other}'s significant {gain:+.2f}"
                for other, gain in claimed.items() for seed, h in headlines.items()
                if (h["gain_points"] > 0) != (gain > 0)]
    return {"claims": len(claimed), "keep_their_sign": not failures, "failures": failures}


def rate(arm: dict) -> str:
    return "n/a" if arm["learning_rate"] is None else f"{arm['learning_rate']:g}"


def markdown(headlines: dict[str, dict], check: dict) -> str:
    lines = ["| seed | transfer (mean ± std over training seeds) | baseline | gain (points) | 95% interval | "
             "significant | learning rate chosen (transfer / baseline) | warnings |", "|---" * 8 + "|"]
    for seed, h in headlines.items():
        target, baseline = h["target"], h["baseline"]
        low, high = h["gain_ci95_points"]
        lines.append(f"| {seed} | {target['mean']:.4f} ± {target['std']:.4f} | {baseline['mean']:.4f} ± "
                     f"{baseline['std']:.4f} | {h['gain_points']:+.2f} | [{low:+.2f}, {high:+.2f}] | "
                     f"{h['significant']} | {rate(target)} / {rate(baseline)} | "
                     f"{len(h['warnings'])} |")
    verdict = ("every significant gain keeps its sign in every run" if check["keep_their_sign"]
               else "NOT every significant gain keeps its sign: " + "; ".join(check["failures"]))
    return (f"The default run with `seed` changed and nothing else ({next(iter(headlines.values()))['metric']}, "
            f"target test split). Written by bench/seed_reruns.py.\n\n" + "\n".join(lines)
            + f"\n\n{check['claims']} of {len(headlines)} runs claim a significant gain; {verdict}.\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, metavar="SEED=EVAL_JSON")
    parser.add_argument("--out", type=Path, default=Path("bench/seed_reruns.json"))
    cli = parser.parse_args()
    headlines = {}
    for entry in cli.runs:
        seed, _, path = entry.partition("=")
        headlines[seed] = headline(json.loads(Path(path).read_text()))
    check = sign_check(headlines)
    cli.out.write_text(json.dumps({"runs": headlines, "check": check}, indent=2) + "\n")
    cli.out.with_suffix(".md").write_text(markdown(headlines, check))
    print(cli.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
