"""Tasks: one module per task (classification, qa, translation) implementing `base.Task`, and the
registry (`registry.task_for`) through which a stage finds the one params.yaml names."""
