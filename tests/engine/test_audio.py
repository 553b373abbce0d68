import torch

from aebench.engine.audio import AudioAttNet, AudioEncoder, AudioNet

torch.set_num_threads(1)  # 2 threads on a loaded 2-core machine spin-wait 100x slower


def test_audionet_original_window_and_other_lengths():
    net = AudioNet(in_channels=29, dim_aud=64)
    assert net(torch.randn(5, 16, 29)).shape == (5, 64)  # DeepSpeech 16x29 as in AD-NeRF
    assert AudioNet(13, 32)(torch.randn(3, 9, 13)).shape == (3, 32)  # mfcc-like windows


def test_audionet_rejects_wrong_channels():
    try:
        AudioNet(13)(torch.randn(2, 16, 29))
    except ValueError as exc:
        assert "(B, T, 13)" in str(exc)
    else:
        raise AssertionError("wrong channel count accepted")


def test_attnet_is_a_convex_combination():
    att = AudioAttNet(att_dims=8, seq_len=8)
    x = torch.randn(4, 8, 16)
    w = att.weights(x)
    assert torch.allclose(w.sum(-1), torch.ones(4), atol=1e-6) and (w >= 0).all()
    assert torch.allclose(att(x), (w[..., None] * x).sum(1), atol=1e-6)
    # only the first att_dims channels steer the weights
    y = x.clone()
    y[..., 8:] += 5.0
    assert torch.allclose(att.weights(y), w)


def test_smoothing_pads_zero_feature_windows_at_clip_ends():
    """As the official code: frames outside the clip enter AudioNet as zero *features*."""
    torch.manual_seed(0)
    enc = AudioEncoder(13, 16, smo_size=8, att_dims=16)
    feats = torch.randn(10, 16, 13)
    padded = torch.cat([torch.zeros(3, 16, 13), feats[:5]])  # frame 1: window frames -3..4
    want = enc.att_net(enc.audio_net(padded)[None])[0]
    assert torch.allclose(enc(feats, torch.tensor([1]), True)[0], want, atol=1e-6)
    # zero features are not zero codes (AudioNet has biases): the padding matters
    assert enc.audio_net(torch.zeros(1, 16, 13)).abs().sum() > 0


def test_encoder_encode_all_matches_per_frame():
    torch.manual_seed(0)
    enc = AudioEncoder(13, 16, smo_size=8, att_dims=16)
    feats = torch.randn(12, 16, 13)
    for smooth in (False, True):
        all_codes = enc.encode_all(feats, smooth)
        one = torch.cat([enc(feats, torch.tensor([i]), smooth) for i in range(12)])
        assert torch.allclose(all_codes, one, atol=1e-5)
    assert not torch.allclose(enc.encode_all(feats, True), enc.encode_all(feats, False))


def test_raw_padding_fills_the_window_with_the_given_pad():
    """train.audio_pad=raw: frames beyond the clip enter as the normalised value of a zero raw window."""
    torch.manual_seed(0)
    enc = AudioEncoder(13, 16, smo_size=8, att_dims=16)
    feats = torch.randn(10, 16, 13)
    pad = torch.full((16, 13), -1.5)
    padded = torch.cat([pad.expand(3, 16, 13), feats[:5]])
    want = enc.att_net(enc.audio_net(padded)[None])[0]
    assert torch.allclose(enc(feats, torch.tensor([1]), True, pad)[0], want, atol=1e-6)
    assert not torch.allclose(enc(feats, torch.tensor([1]), True)[0], want, atol=1e-4)  # zero padding differs
