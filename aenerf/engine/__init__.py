"""The NeRF engine shared by every NeRF method (AE-NeRF here, DFRF and AD-NeRF in
``baselines/``).

Modules (import from them directly; their public functions are stable):

- :mod:`~aenerf.engine.rays`: ``pixel_rays``, ``image_rays``, ``project``, ``view_dirs``
  (OpenCV camera-to-world poses, intrinsics (focal, cx, cy); directions unnormalised so
  near/far are camera depths).
- :mod:`~aenerf.engine.encoding`: ``PositionalEncoding(n_freqs)`` with ``.out_dim``.
- :mod:`~aenerf.engine.sampling`: ``stratified`` (coarse) and ``sample_pdf`` (fine).
- :mod:`~aenerf.engine.render`: ``composite`` (volume rendering of any per-sample values
  over a background) and ``render_rays(field, ...)`` (coarse + hierarchical fine passes).
- :mod:`~aenerf.engine.views`: ``Views.from_identity`` (an identity's frames, masks,
  poses, audio windows as tensors) and ``sample_rays`` (a ray batch of one frame, biased to
  the head by ``train.face_fraction``).
- :mod:`~aenerf.engine.trainer`: ``Trainer`` (Adam, exponential lr decay, seeded batches,
  checkpoints + resume, stop on NaN/Inf, tqdm with loss/PSNR), ``seed_everything``, ``psnr``.
- :mod:`~aenerf.engine.checkpoint`: checkpoint directories (``save_checkpoint``,
  ``load_checkpoint``, ``latest_checkpoint``, ``read_state``).
- :mod:`~aenerf.engine.renderer`: ``render_image`` (chunked) and ``write_render`` (mp4 +
  audio).
- Reusable networks: :mod:`~aenerf.engine.mlp` ``NeRFMLP`` (trunk with skip, density,
  colour, optional parsing mask), :mod:`~aenerf.engine.audio` ``AudioNet`` (feature window
  -> audio code), :mod:`~aenerf.engine.references` ``RefEncoder`` (CNN, no downsampling),
  ``project_to_refs``, ``sample_features``, :mod:`~aenerf.engine.slot_attention`
  ``SlotAggregation``.

How a method is built on the engine
-----------------------------------
1. A *field*: ``field(points (N,S,3), viewdirs (N,3), level) -> {"sigma": (N,S) >= 0,
   "rgb": (N,S,3), ...}``; ``level`` is ``"coarse"`` or ``"fine"``. Extra outputs
   (masks...) are composited too; ``aux_*`` keys pass through. Per-batch conditioning
   (audio code, reference features, ray groups) is captured by building the field as a
   closure per batch; ``render_rays`` keeps the ray order.
2. A model ``nn.Module`` with ``training_step(batch, step) -> (loss, {"psnr": ..., ...})``;
   it typically calls ``render_rays(field, batch["rays_o"], batch["rays_d"], near, far,
   batch["bg"], n_coarse, n_fine, perturb=True, generator=...)`` and compares
   ``out["fine"]["rgb"]`` / ``out["coarse"]["rgb"]`` with ``batch["rgb"]``.
3. Training: ``Trainer(model, cfg.train, ckpt_root, batch_fn, device, seed=cfg.seed,
   meta={...}, init_from=base_ckpt).fit(iters)`` -> the ``final`` checkpoint dir, where
   ``batch_fn(step, generator)`` returns a dict (usually ``sample_rays(views, frame,
   cfg.train.batch_rays, cfg.train.face_fraction, generator)`` plus conditioning). Put
   what rendering needs to rebuild the model (sizes, reference frame indices) in ``meta``;
   read it back with ``read_state(ckpt)["meta"]`` and ``load_checkpoint(ckpt, model)``.
4. Rendering: ``render_image(fn, H, W, intrinsics, c2w, background, cfg.train.chunk)``
   with ``fn(rays_o, rays_d, bg) -> (N, 3)`` per frame, then ``write_render(frames, n, out,
   fps, audio)``.
"""
