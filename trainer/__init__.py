"""Training and evaluating detectors on users' own labelled folders.

Commands (``trainer/cli.py``): ``check-data``, ``train``, ``eval``. Modules, in data order:

- reading: ``folders`` (layouts), ``voc_xml`` (defusedxml parsing), ``image_io``,
  ``cleaning`` (box rules), ``scan`` (folders -> samples + issues), ``issues``, ``classes``;
- reporting: ``report`` (check-data), ``box_stats`` (box sizes vs default boxes);
- training data: ``augment`` (SSD augmentation), ``targets`` (matching + encoding),
  ``loader`` (threaded deterministic batches), ``split``;
- training: ``loss`` (SSD loss, keras.ops), ``training_model`` (the Keras wrapper),
  ``schedule``, ``optim``, ``finetune``, ``checkpoint``, ``config``, ``run_files``, ``loop``;
- evaluation: ``inference`` (batched), ``voc_eval`` (AP rules), ``evaluate``, ``plots``.

This package imports nothing at import time, so ``main.py --help`` stays instant. It depends
on ``models`` and never on ``detector_app``.
"""
