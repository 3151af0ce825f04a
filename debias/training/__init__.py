"""The train stage, one idea per module: ``data`` (tokens and batches), ``model`` (load, freeze,
export), ``module`` (the fair classifier and its assembly), ``losses`` (the objective), ``step``
(one step, one epoch), ``selection`` (which epoch to keep), ``state`` (checkpointed state).
Import from the modules; this package imports nothing so that ``config`` stays torch-free."""
