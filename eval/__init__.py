"""Metrics (PSNR, SSIM, LPIPS, LMD, SyncNet LSE-C/LSE-D) and their weights store."""
