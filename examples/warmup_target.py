"""An example strategy plugin (docs/architecture.md, "Adding a strategy"): a warm-up epoch on the target labels
at a tenth of the learning rate, then the target phase. Name it in params.yaml to use it:

    plugins: [examples.warmup_target]
    finetune: {strategy: warmup_target}
"""

from transfer.core.strategy_registry import Strategy, register_strategy


def warm_then_target(model, phase, *, params, task, source, target) -> dict:
    """A warm-up epoch on the target labels at a tenth of the rate, then the target phase."""
    config = params.finetune
    return {"warmup": phase(model, train=target["train"], evaluation=None, epochs=1,
                            learning_rate=config.learning_rate / 10, phase="warmup"),
            "target": phase(model, train=target["train"], evaluation=target["validation"],
                            epochs=config.target_epochs, learning_rate=config.learning_rate, phase="target")}


register_strategy(Strategy("warmup_target", "a warm-up phase, then the target phase", train=warm_then_target))
