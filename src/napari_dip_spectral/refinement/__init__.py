"""What follows a denoising fit: the share of non-local means, the Wiener passes guided by the
result, the block-matched estimates the decoder does not guide, and the boost."""
