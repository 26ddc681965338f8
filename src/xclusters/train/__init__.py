"""Training of the two CNNs with Keras callbacks (no hand-rolled loops).

* :func:`xclusters.train.superobs.train_superobs` -- paper 000: best-validation-loss
  checkpoint, stop when the minimum has held for ``patience`` epochs.
* :func:`xclusters.train.mass.train_mass_fold` -- paper 004: stop on the validation-fold
  convergence criteria, else keep the model of the last epoch; :func:`fold_splits`.

Both accept ``tf.data.Dataset`` objects; ``*_from_file`` wrappers read ``dataset.h5``
through :mod:`xclusters.dataset.tfdata`. Each run writes ``<model>.history.csv`` and
``<model>.summary.json`` next to the model and keeps a ``BackupAndRestore`` state in
``workdir`` so a preempted job continues where it stopped.
"""
__all__ = ["runtime", "callbacks", "superobs", "mass"]
