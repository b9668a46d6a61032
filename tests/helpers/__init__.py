"""Builders the test suite shares, one module per concern; the conftests hold only fixtures.

- ``images``: deterministic pictures (``pattern``, ``scene``), ``encode``, the preprocessing
  specs ``RGB_SPEC``/``GRAY_SPEC``, and the hostile corpus's odd, broken and bomb files.
- ``dicom``: DICOM files written with pydicom (with patient identifiers), and broken ones.
- ``models``: ``make_checkpoint``, ``ExportedModel`` and ``export_model_repo``.
- ``datasets``: tiny datasets in the real on-disk formats, ``tiny_config`` and its flags ``TINY``.
- ``server``: ``running_server`` (the real server in a subprocess), ``free_port``.
- ``rawhttp``: a raw-socket HTTP/1.1 client that sends malformed requests as they are.
- ``multipart``: multipart/form-data bodies written by hand.
- ``predictions``: the checkpoint's and the served model's probabilities, for parity.
- ``cli``: ``flat``, CLI output without rich's boxes.
- ``app``: ``wait_loaded``, for the app in process (TestClient).
"""
