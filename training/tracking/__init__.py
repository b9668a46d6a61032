"""Experiment tracking for training runs: MLflow and TensorBoard (``--track``).

``--track mlflow[=URI]`` logs to an MLflow store (``model.mlflow_store`` resolves the URI;
the default is a local SQLite file, no server), ``--track tensorboard[=DIR]`` writes event
files (default: ``RUN/tensorboard``, so ``tensorboard --logdir runs`` shows every run).
Both get the same scalars per epoch (losses, accuracy, AUC, learning rate, throughput, dead
fraction and sparsity overall and per layer) and the test figures at the end; MLflow also
gets every resolved training option as a param, tags for dataset, architecture and
activation, and the plots and report as artifacts; TensorBoard gets a histogram of each
activation layer's inputs per epoch, where dying units show as mass piling up below zero.

Faults: ``Tracking.connect`` reaches every tracker before training starts and raises
``TrackingUnavailable`` when one cannot be used (``optional``: warns once and trains without
it). A tracker that fails later is reported once and dropped: training, checkpoints and the
run folder never depend on it.

One concern per module:

- ``options``: the ``--track`` flags (``TrackingOptions``, ``parse_track``); torch-free.
- ``tracker``: the ``Tracker`` interface and the ``RunDescription`` it starts from.
- ``scalars``: the numbers logged (params, epoch scalars, test figures).
- ``mlflow_run``, ``tensorboard_log``: the two trackers.
- ``run_tracking``: ``Tracking``, the trackers of one run and their faults.
- ``sweep_tracking``: ``SweepTracking``, a sweep's MLflow parent run.
"""
