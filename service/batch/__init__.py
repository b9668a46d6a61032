"""Dataset-scale inference, ``rectifier predict``: an adapter over the shared path.

Sources (files, folders, globs, path lists, DICOM, video) become work items
(``sources``, ``video``); one per-batch function (``predictor``) decodes them with
``model.decoding``, preprocesses them with ``model.preprocess`` and runs them on an
onnxruntime session made by ``service.inference.providers``, as the server does; the rows
go to Parquet, CSV or JSON Lines in parts that are each complete on disk (``output``). The
engines (``local``, ``ray_engine``) only schedule that function. Torch-free, like all of
``service/``; pyarrow, PyAV, tqdm and Ray are imported where they are used (the ``batch``
and ``ray`` extras).
"""
