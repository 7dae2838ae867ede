"""ImageDream, state-dict compatible, inflated to multi-view video with motion modules.

Entry points (imported lazily by callers; this package imports nothing heavy by itself):
- ``checkpoints.load_model(path, text_encoder=None, image_encoder=None, motion_module=None, dtype, device)``
  -> ``bundle.MVModel`` (UNet, VAE, encoders, tokenizer, CLIP preprocessing, scheduler config).
- ``unet.MultiViewUNet.forward(sample [B*F*V, 4, h, w], timestep, context, camera, image_tokens, num_views,
  num_frames, mask, reference_latent)``; images ordered (batch, frame, view), views innermost.
- ``encoders``: ``encode_text``, ``encode_image_tokens``, ``vae_encode``, ``vae_decode``.
- ``sampler.sample_video`` / ``encode_conditioning`` + ``sample_motion`` + ``decode_video``.
- ``checkpoints.save_motion_module`` / ``apply_motion_module``; ``tiny.make_tiny`` for test weights.
"""
