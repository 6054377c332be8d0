"""Training: Trainer construction, resumable checkpoints, CPU dropout masks, transfer strategies,
domain-adaptive pretraining, distillation and label-budget subsets."""
