"""How far apart two domains are: text statistics, tokenizer fit, and distances between embeddings.

Text side (no model): vocabulary overlap of the most frequent content words (as in Gururangan et
al. 2020, "Don't Stop Pretraining") and the Jensen-Shannon divergence of unigram distributions.
Tokenizer side: how badly the base tokenizer fits each domain (unknown tokens, words split into
several pieces). Embedding side: the proxy A-distance (Ben-David et al. 2007; a linear classifier
tries to tell the domains apart, PAD = 2(1 - 2*err) on held-out data: 0 = indistinguishable,
2 = perfectly separable) and the squared MMD with an RBF kernel whose bandwidth is the median
pairwise distance (Gretton et al. 2012; unbiased estimate, ~0 for one distribution).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import TSNE
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def word_counts(texts: Sequence[str], drop_stop_words: bool = False) -> Counter:
    counts = Counter(word for text in texts for word in WORD.findall(text.lower()))
    if drop_stop_words:
        for word in ENGLISH_STOP_WORDS & counts.keys():
            del counts[word]
    return counts


def vocabulary_overlap(source: Sequence[str], target: Sequence[str], top_k: int) -> float:
    """Jaccard index of the two domains' `top_k` most frequent content words (stop words dropped)."""
    top = [{w for w, _ in word_counts(texts, drop_stop_words=True).most_common(top_k)} for texts in (source, target)]
    union = top[0] | top[1]
    return len(top[0] & top[1]) / len(union) if union else 1.0


def js_divergence(source: Sequence[str], target: Sequence[str]) -> float:
    """Jensen-Shannon divergence (base 2: 0 = same unigram distribution, 1 = disjoint vocabularies)."""
    counts = word_counts(source), word_counts(target)
    vocabulary = sorted(counts[0].keys() | counts[1].keys())
    if not vocabulary:
        return 0.0
    p, q = (np.array([c[w] for w in vocabulary], dtype=np.float64) for c in counts)
    p, q = p / max(p.sum(), 1), q / max(q.sum(), 1)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nonzero = a > 0
        return float(np.sum(a[nonzero] * np.log2(a[nonzero] / m[nonzero])))

    return float(np.clip((kl(p) + kl(q)) / 2, 0.0, 1.0))


def tokenizer_fit(texts: Sequence[str], tokenizer) -> dict[str, float]:
    """Unknown-token rate, share of words split into several pieces, and pieces per word.

    A tokenizer that fits a domain badly splits its words into many pieces (or maps them to
    [UNK]); such domains tend to gain most from domain-adaptive pretraining.
    """
    encoded = tokenizer(list(texts), add_special_tokens=False)
    tokens = unknown = words = split = 0
    for index, ids in enumerate(encoded["input_ids"]):
        tokens += len(ids)
        unknown += sum(token == tokenizer.unk_token_id for token in ids)
        pieces = Counter(word for word in encoded.word_ids(index) if word is not None)
        words += len(pieces)
        split += sum(n > 1 for n in pieces.values())
    return {"unk_rate": unknown / max(tokens, 1), "split_word_rate": split / max(words, 1),
            "tokens_per_word": tokens / max(words, 1)}


def length_summary(lengths: Sequence[int]) -> dict[str, float]:
    values = np.asarray(lengths, dtype=np.float64)
    return {"mean": float(values.mean()), "median": float(np.median(values)), "p95": float(np.percentile(values, 95))}


def proxy_a_distance(source: np.ndarray, target: np.ndarray, heldout_fraction: float, seed: int) -> dict[str, float]:
    """PAD = 2(1 - 2*err) of a logistic-regression domain classifier, err measured on held-out rows."""
    features = np.concatenate([source, target])
    domains = np.concatenate([np.zeros(len(source)), np.ones(len(target))])
    fit_x, test_x, fit_y, test_y = train_test_split(features, domains, test_size=heldout_fraction,
                                                    random_state=seed, stratify=domains)
    classifier = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    classifier.fit(fit_x, fit_y)
    error = float(np.mean(classifier.predict(test_x) != test_y))
    return {"proxy_a_distance": 2 * (1 - 2 * error), "domain_classifier_error": error}


def mmd_rbf(source: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Unbiased squared MMD with a Gaussian kernel, bandwidth = median pairwise distance of the pooled sample."""
    x, y = torch.as_tensor(source, dtype=torch.float64), torch.as_tensor(target, dtype=torch.float64)
    pooled = torch.cat([x, y])
    distances = torch.cdist(pooled, pooled).pow(2)
    off_diagonal = distances[~torch.eye(len(pooled), dtype=torch.bool)]
    bandwidth = float(off_diagonal.sqrt().median())
    kernel = torch.exp(-distances / (2 * max(bandwidth, 1e-12) ** 2))
    n, m = len(x), len(y)
    k_xx, k_yy, k_xy = kernel[:n, :n], kernel[n:, n:], kernel[:n, n:]
    mmd2 = ((k_xx.sum() - k_xx.diagonal().sum()) / (n * (n - 1))
            + (k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1)) - 2 * k_xy.mean())
    return {"mmd2": float(mmd2), "mmd_bandwidth": bandwidth}


@torch.no_grad()
def mean_pooled_embeddings(model, tokenizer, texts: Sequence[str], *, max_length: int, batch_size: int) -> np.ndarray:
    """Mean of the last hidden states over real (non-pad) tokens, batched in length order."""
    model.eval()
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        rows = order[start:start + batch_size]
        batch = tokenizer([texts[i] for i in rows], truncation=True, max_length=max_length, padding=True,
                          return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        out[rows] = ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).numpy()
    return out


def project_2d(embeddings: np.ndarray, method: str, seed: int) -> np.ndarray:
    """PCA (fast, linear, stable across runs) or t-SNE (local structure; slower, layout varies)."""
    if method == "tsne":
        perplexity = min(30.0, (len(embeddings) - 1) / 3)
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(embeddings)
    return PCA(n_components=2, random_state=seed).fit_transform(embeddings)
