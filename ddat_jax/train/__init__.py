"""Training engine: ``make_train(config, data) -> train(hparams, key)``."""
