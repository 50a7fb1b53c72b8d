"""Generator and discriminator: shapes, conditioning, test-time dropout, input errors."""

import pytest
import torch

from clustergan.errors import ConfigError
from clustergan.models import PatchDiscriminator, UNetGenerator, count_parameters

torch.set_num_threads(1)


def _gen(size, **kw):
    torch.manual_seed(0)
    kw.setdefault("ngf", 8)
    return UNetGenerator(size, **kw)


@pytest.mark.parametrize("size", [32, 64, 128])
def test_generator_shape_and_range(size):
    g = _gen(size, nz=8, num_clusters=3)
    x = torch.randn(2, 3, size, size)
    y = g(x, torch.randn(2, 8), torch.tensor([0, 2]))
    assert y.shape == (2, 3, size, size)
    assert y.abs().max() <= 1.0


def test_generator_256_shape():
    g = _gen(256, nz=0, num_clusters=0)
    with torch.no_grad():
        assert g(torch.randn(1, 3, 256, 256)).shape == (1, 3, 256, 256)


def test_generator_parameter_count_matches_pix2pix_plus_noise():
    # pix2pix unet_256 with instance norm (every conv biased), written out layer by layer.
    c = [64, 128, 256, 512, 512, 512, 512, 512]
    downs = sum(16 * cin * cout + cout for cin, cout in zip([3] + c[:-1], c, strict=False))
    ups = 16 * 512 * 512 + 512  # innermost: no skip
    ups += sum(16 * 2 * c[i] * c[i - 1] + c[i - 1] for i in range(1, 7))
    ups += 16 * 2 * 64 * 3 + 3
    assert count_parameters(UNetGenerator(256, nz=0)) == downs + ups == 54_409_603
    # 8 noise channels concatenated to every down block's input add 8 * 16 weights per output channel.
    assert count_parameters(UNetGenerator(256, nz=8)) == downs + ups + sum(8 * 16 * cout for cout in c)


def test_generator_without_conditioning():
    g = _gen(32, nz=0, num_clusters=0)
    y = g(torch.randn(2, 3, 32, 32))
    assert y.shape == (2, 3, 32, 32)


def test_generator_depends_on_z_and_cluster():
    g = _gen(32, nz=8, num_clusters=4).eval()
    x = torch.randn(1, 3, 32, 32)
    z = torch.randn(1, 8)
    with torch.no_grad():
        base = g(x, z, torch.tensor([0]))
        other_cluster = g(x, z, torch.tensor([3]))
        other_z = g(x, torch.randn(1, 8), torch.tensor([0]))
        again = g(x, z, torch.tensor([0]))
    assert torch.equal(base, again)
    assert (base - other_cluster).abs().max() > 1e-6
    assert (base - other_z).abs().max() > 1e-6


def test_generator_cluster_only():
    g = _gen(32, nz=0, num_clusters=2).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.equal(g(x, None, torch.tensor([0])), g(x, None, torch.tensor([1])))


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_dropout_stays_active_in_eval(norm):
    x = torch.randn(2, 3, 64, 64)
    g = _gen(64, nz=0, dropout=0.5, norm=norm).eval()
    with torch.no_grad():
        assert not torch.equal(g(x), g(x))
    g = _gen(64, nz=0, dropout=0.0, norm=norm).eval()
    with torch.no_grad():
        assert torch.equal(g(x), g(x))


def test_generator_channels_last_matches():
    g = _gen(32, nz=8).eval()
    x, z = torch.randn(2, 3, 32, 32), torch.randn(2, 8)
    with torch.no_grad():
        ref = g(x, z)
        out = g.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last), z)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_generator_missing_inputs():
    g = _gen(32, nz=8, num_clusters=3)
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(ValueError, match=r"this generator has nz=8: pass z of shape \[B, 8\]"):
        g(x, None, torch.tensor([0]))
    with pytest.raises(ValueError, match=r"conditioned on 3 clusters: pass cluster_ids \[B\]"):
        g(x, torch.randn(1, 8), None)
    with pytest.raises(ValueError, match=r"z has shape \(1, 4\), expected \[1, 8\]"):
        g(x, torch.randn(1, 4), torch.tensor([0]))
    with pytest.raises(ValueError, match="expected \\[B, 3, 32, 32\\]"):
        g(torch.randn(1, 3, 64, 64), torch.randn(1, 8), torch.tensor([0]))
    with pytest.raises(ValueError, match="nz=0 \\(no noise input\\): pass z=None"):
        _gen(32, nz=0)(x, torch.randn(1, 8))


@pytest.mark.parametrize("size", [24, 8, 48])
def test_generator_bad_size(size):
    with pytest.raises(ConfigError, match=f"generator image size {size} is not supported: use a power of two >= 16"):
        UNetGenerator(size)


def test_generator_bad_norm():
    with pytest.raises(ConfigError, match="unknown generator norm 'group': use one of instance, batch"):
        UNetGenerator(32, norm="group")


@pytest.mark.parametrize(
    "size,scales,expected",
    [(32, 1, [(2, 2)]), (32, 2, [(2, 2), (2, 2)]), (256, 1, [(30, 30)]), (256, 2, [(30, 30), (14, 14)])],
)
def test_discriminator_shapes(size, scales, expected):
    torch.manual_seed(0)
    d = PatchDiscriminator(ndf=8, num_scales=scales, num_clusters=3)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        out = d(x, x, torch.tensor([0, 1]))
    assert [tuple(o.shape) for o in out] == [(2, 1, *hw) for hw in expected]


def test_discriminator_unconditional():
    d = PatchDiscriminator(ndf=8)
    out = d(torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64))
    assert len(out) == 1 and out[0].shape == (1, 1, 6, 6)


def test_projection_changes_logits_per_sample():
    torch.manual_seed(0)
    d = PatchDiscriminator(ndf=8, num_scales=2, num_clusters=3)
    x, y = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        a = d(x, y, torch.tensor([0, 1]))
        b = d(x, y, torch.tensor([2, 1]))
    for sa, sb in zip(a, b, strict=False):
        assert (sa[0] - sb[0]).abs().max() > 1e-6  # sample 0 changed cluster
        torch.testing.assert_close(sa[1], sb[1])  # sample 1 did not: the grouped conv keeps samples apart


def test_discriminator_errors():
    d = PatchDiscriminator(ndf=8, num_scales=2, num_clusters=3)
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(ValueError, match=r"conditioned on 3 clusters: pass cluster_ids \[B\]"):
        d(x, x)
    with pytest.raises(ValueError, match="too small for 2 scale\\(s\\): use images of at least 32 px"):
        d(torch.randn(1, 3, 16, 16), torch.randn(1, 3, 16, 16), torch.tensor([0]))
    with pytest.raises(ValueError, match="unconditional \\(num_clusters=0\\): pass cluster_ids=None"):
        PatchDiscriminator(ndf=8)(x, x, torch.tensor([0]))


def test_discriminator_parameter_count_matches_pix2pix():
    # pix2pix's basic 70x70 PatchGAN on 6 channels with instance norm (biased convs), layer by layer.
    chans = [(6, 64), (64, 128), (128, 256), (256, 512), (512, 1)]
    expected = sum(16 * cin * cout + cout for cin, cout in chans)
    assert count_parameters(PatchDiscriminator()) == expected == 2_767_809
    # Projection adds one [512, 4, 4] kernel per cluster and scale.
    assert count_parameters(PatchDiscriminator(num_scales=2, num_clusters=5)) == 2 * expected + 2 * 5 * 512 * 16


def test_halved_scale_width_matches_msgans_multiscale_discriminator():
    # MSGAN's D_NLayersMulti (basic_128_multi: n_layers 2, num_D 2) gives its second scale ndf / 2 channels;
    # 835,234 parameters with instance norm, counted on the authors' networks.py.
    def patchgan(ndf, n_layers):
        widths = [6] + [ndf * min(2**n, 8) for n in range(n_layers + 1)] + [1]
        return sum(16 * cin * cout + cout for cin, cout in zip(widths[:-1], widths[1:], strict=True))

    halved = PatchDiscriminator(ndf=64, n_layers=2, num_scales=2, scale_width="halved")
    assert count_parameters(halved) == patchgan(64, 2) + patchgan(32, 2) == 835_234
    assert count_parameters(PatchDiscriminator(ndf=64, n_layers=2, num_scales=2)) == 2 * patchgan(64, 2)
    x = torch.randn(1, 3, 128, 128)
    assert [tuple(o.shape) for o in halved(x, x)] == [(1, 1, 30, 30), (1, 1, 14, 14)]
    with pytest.raises(ConfigError, match="unknown discriminator scale_width 'quarter'"):
        PatchDiscriminator(scale_width="quarter")
