"""Knowledge transfer with pretrained language models: the library behind the DVC stages in stages/.

    core/      params schema, errors, artifact I/O, model loading
    data/      corpora, tables, data fingerprints, cleaning, labeled budgets, augmentation
    tasks/     the task registry: classification, qa, translation (base.Task is the interface)
    training/  Trainer runs, checkpoints, CPU dropout masks, strategies, pretraining, distillation
    analysis/  headline gains, comparisons, label-budget maths, domain-shift metrics, the run report
"""
