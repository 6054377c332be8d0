"""Target label-shift correction (Saerens, Latinne & Decaestecker 2002), on calibrated posteriors.

A classifier's posteriors carry the class priors of the data it was trained on. When the target's
priors differ, EM on unlabeled target text estimates them: alternate (E) re-weighting each posterior by
new/old prior ratios and renormalising, (M) setting the new priors to the mean re-weighted posterior.
The same ratios then correct the posteriors of the test examples. No labels and no retraining.

EM trusts the posteriors: a fine-tuned network's are over-confident, and EM on them drives priors to
extremes. Temperature scaling on labeled validation data first (Guo et al. 2017) is what Alexandari et
al. (2020) found makes EM work.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def reweight(probabilities: np.ndarray, train_priors: np.ndarray, target_priors: np.ndarray) -> np.ndarray:
    """p_t(y|x) proportional to p_s(y|x) * pi_t(y) / pi_s(y): posteriors under the target's priors."""
    weighted = probabilities * (np.asarray(target_priors) / np.maximum(train_priors, 1e-12))
    return weighted / np.maximum(weighted.sum(axis=1, keepdims=True), 1e-12)


def tempered(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): the posteriors of the logits divided by T."""
    logits = np.log(np.maximum(probabilities, 1e-12)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def fit_temperature(probabilities: np.ndarray, label_ids: np.ndarray) -> float:
    """The temperature (0.25 to 20, log grid) that minimises the negative log-likelihood of `label_ids`."""
    label_ids = np.asarray(label_ids, dtype=np.int64)
    grid = np.exp(np.linspace(np.log(0.25), np.log(20.0), 121))

    def nll(temperature: float) -> float:
        return float(-np.log(np.maximum(tempered(probabilities, temperature)[np.arange(len(label_ids)), label_ids],
                                        1e-12)).mean())

    return float(min(grid, key=nll))


def em_priors(probabilities: np.ndarray, train_priors: np.ndarray, max_iterations: int = 100,
              tolerance: float = 1e-6) -> np.ndarray:
    """The target's class priors from unlabeled posteriors (rows sum to 1), by Saerens et al.'s EM."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    train_priors = np.asarray(train_priors, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[1] != train_priors.shape[0]:
        raise ValueError(f"posteriors of shape {probabilities.shape} do not match {train_priors.shape[0]} priors")
    priors = train_priors.copy()
    for _ in range(max_iterations):
        updated = reweight(probabilities, train_priors, priors).mean(axis=0)
        if np.abs(updated - priors).max() < tolerance:
            return updated
        priors = updated
    return priors


def smoothed(priors: np.ndarray, n_examples: int) -> np.ndarray:
    """Priors with one pseudo-count per class over `n_examples`: EM on an over-confident model can drive a
    class's prior to 0, which as log(prior) in a bias would forbid that class outright."""
    priors = np.asarray(priors, dtype=np.float64)
    return (priors * n_examples + 1.0) / (n_examples + len(priors))


def class_priors(label_ids: np.ndarray, n_classes: int) -> np.ndarray:
    """Class frequencies of a labeled set, with one pseudo-count each (no class gets prior 0)."""
    counts = np.bincount(np.asarray(label_ids, dtype=np.int64), minlength=n_classes) + 1.0
    return counts / counts.sum()


def calibrated_target_priors(validation: np.ndarray, validation_labels: np.ndarray, unlabeled: np.ndarray,
                             train_priors: np.ndarray) -> tuple[float, np.ndarray]:
    """(temperature fitted on validation, the target priors EM finds on the tempered unlabeled posteriors,
    smoothed): everything finetune.label_shift: em needs, from probabilities."""
    temperature = fit_temperature(validation, validation_labels)
    priors = em_priors(tempered(unlabeled, temperature), train_priors)
    return temperature, smoothed(priors, len(unlabeled))


def logit_adjusted(probabilities: np.ndarray, train_priors: np.ndarray, strength: float) -> np.ndarray:
    """log p(y|x) - strength * log p_train(y) (Menon et al. 2021): the scores whose argmax is the adjusted
    prediction (strength 1: the Bayes rule for the balanced error)."""
    return np.log(probabilities + 1e-12) - strength * np.log(train_priors)


def choose_strength(probabilities: np.ndarray, labels: np.ndarray, train_priors: np.ndarray,
                    strengths: list[float], score: Callable[[np.ndarray, np.ndarray], float]
                    ) -> tuple[float, dict[float, float]]:
    """The strength whose adjusted predictions score best on (`probabilities`, `labels`), ties to the weakest;
    and every strength's score."""
    scores = {s: score(labels, logit_adjusted(probabilities, train_priors, s).argmax(axis=1))
              for s in sorted(set(strengths))}
    return max(scores, key=lambda s: (scores[s], -s)), scores
