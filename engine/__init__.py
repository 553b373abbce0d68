"""The NeRF engine shared by every NeRF method (AE-NeRF in ``aenerf/``, DFRF and AD-NeRF in
``baselines/``): a floor of its own (the folder ``engine/``, imported as ``aebench.engine``),
below the methods and above the foundation; it imports no method (an import-linter contract).

Modules (import from them directly; their public functions are stable):

- :mod:`~aebench.engine.rays`: ``pixel_rays``, ``image_rays``, ``project``, ``view_dirs``
  (OpenCV camera-to-world poses, intrinsics (focal, cx, cy); directions unnormalised so
  near/far are camera depths).
- :mod:`~aebench.engine.encoding`: ``PositionalEncoding(n_freqs)`` with ``.out_dim``.
- :mod:`~aebench.engine.sampling`: ``stratified`` (coarse) and ``sample_pdf`` (fine).
- :mod:`~aebench.engine.volume`: ``composite`` (volume rendering of any per-sample values
  over a background), ``render_rays(field, ...)`` (coarse + hierarchical fine passes; with an
  occupancy grid only occupied samples, and early ray termination) and ``count_samples``.
- :mod:`~aebench.engine.occupancy`: ``OccupancyGrid`` (empty-space skipping,
  ``train.sampler=occupancy``) over the cameras' view volume (``frustum_bounds``).
- :mod:`~aebench.engine.views`: ``Views.from_identity`` (an identity's frames, masks,
  poses, face boxes, normalised audio windows as tensors) and ``sample_rays`` (a ray batch of
  one frame, ``train.face_fraction`` of it inside the face box).
- :mod:`~aebench.engine.trainer`: ``Trainer`` (Adam with per-group lr multiples, exponential lr
  decay continuing a base model's global step, seeded batches, checkpoints + resume, stop on
  NaN/Inf, tqdm with loss/PSNR), ``seed_everything``, ``psnr``.
- :mod:`~aebench.engine.checkpoint`: checkpoint directories (``save_checkpoint``,
  ``load_checkpoint``, ``latest_checkpoint``, ``read_state``).
- :mod:`~aebench.engine.image_render`: ``render_image`` (chunked), ``auto_chunk`` (``train.chunk=0``)
  and ``write_render`` (mp4 + audio).
- :mod:`~aebench.engine.settings`: ``NeRFSettings`` that each method's section extends,
  and ``FieldSettings`` (``cfg.field``), the position encoding they share.
- :mod:`~aebench.engine.model`: the network half of a NeRF method (``NeRFModel``: encoders, samplers' networks,
  the hooks a method fills in, the training step).
- :mod:`~aebench.engine.method`: the one NeRF-method skeleton (``NeRFMethod``: settings, training, checkpoints,
  rendering).
- Reusable networks: :mod:`~aebench.engine.mlp` ``NeRFMLP`` (trunk with skip, density,
  colour, optional parsing mask), :mod:`~aebench.engine.audio` ``AudioEncoder`` (AD-NeRF's
  AudioNet + AudioAttNet smoothing), :mod:`~aebench.engine.references` ``FeatureExtractor``
  (DFRF's CNN, no downsampling), ``project_to_refs``, ``clamp_to_image``, ``reference_tokens``,
  :mod:`~aebench.engine.slot_attention` ``SlotAggregation``.

How a method is built on the engine
-----------------------------------
One module with three parts (see :mod:`aebench.engine.method` for what the skeleton does):

1. ``XSettings(NeRFSettings)``: a frozen dataclass of the method's section ``cfg.x``, each
   setting declared once (``setting(default, ...)`` and a docstring; those declared
   ``arch=False`` may differ between base model and fine-tune). The shared ``field`` part
   (:class:`~aebench.engine.settings.FieldSettings`) comes with ``NeRFSettings``.
2. ``XModel(NeRFModel)``: builds its networks in ``__init__(settings, audio_channels, train)``
   and implements ``field(code, refs, groups)`` returning a field closure
   ``field(points (N,S,3), viewdirs (N,3), level, rays=None) -> {"sigma": (N,S) >= 0, "rgb": (N,S,3), ...}``
   (``rays`` (N,): the batch ray of each row when the occupancy sampler packs samples as rows);
   with references also ``references(images, c2w, intrinsics, codes)``; optionally
   ``ray_groups``, ``extra_loss``, ``reinit_for_finetune``, ``mask_backgrounds``.
3. ``X(NeRFMethod)`` with ``name``, ``has_base_model``, ``settings_cls``, ``model_cls``.

Where it lives: a baseline is one module in the ``baselines/`` folder (imported as
``aebench.baselines.x``); it imports the engine (``aebench.engine``) and the foundation
(``aebench.settings``, ``aebench.method_api``, ``aebench.data``), never the harness or the metrics
(the import-linter contracts in ``pyproject.toml``, run by the tests, fail otherwise). Then one
registry line: an entry point (``[project.entry-points."aebench.methods"] x = "aebench.baselines.x:X"``
in ``pyproject.toml``, or ``yourpkg.x:X`` in your own package's). It appears in ``aebench ls
methods``, runs in protocols, and its section ``cfg.x`` is its settings class's.
"""
