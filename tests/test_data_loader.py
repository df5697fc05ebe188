"""make_loader: shapes, dtypes, normalisation, augmentation and generator-state reproducibility."""

from __future__ import annotations

import pytest
import torch

from workbench.data import DeviceAugment, InMemoryImages, load_splits, make_loader
from workbench.errors import InvalidOptionError


def _source(n: int = 10, c: int = 1, h: int = 8, w: int = 8) -> InMemoryImages:
    images = torch.arange(n * c * h * w, dtype=torch.int64).remainder(256).to(torch.uint8).reshape(n, c, h, w)
    return InMemoryImages(images, torch.arange(n) % 3)


def _loader(src: InMemoryImages, gen: torch.Generator, **kw):
    args = dict(batch_size=4, device="cpu", train=True, image_size=(8, 8), channels=src.channels,
                mean=(0.5,) * src.channels, std=(0.25,) * src.channels, generator=gen)
    args.update(kw)
    return make_loader(src, **args)


def test_digits_loader_shapes_dtypes_and_normalisation() -> None:
    s = load_splits("digits")
    spec = s.spec
    gen = torch.Generator().manual_seed(0)
    loader = make_loader(s.train, batch_size=128, device="cpu", train=True, image_size=(28, 28), channels=1,
                         mean=spec.mean, std=spec.std, crop_padding=2, generator=gen)
    assert len(loader) == -(-len(s.train) // 128)
    batches = list(loader)
    assert len(batches) == len(loader)
    x, y = batches[0]
    assert x.shape == (128, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert batches[-1][0].shape[0] == len(s.train) - 128 * (len(loader) - 1)
    # Each epoch covers every training image exactly once.
    assert sorted(torch.cat([b[1] for b in batches]).tolist()) == sorted(s.train.labels.tolist())
    # Normalised with the data set's own statistics: roughly zero mean, unit spread over an epoch.
    allx = torch.cat([b[0] for b in batches])
    assert abs(float(allx.mean())) < 0.2 and 0.7 < float(allx.std()) < 1.3


def test_validation_loader_is_ordered_unaugmented_and_leaves_generator_alone() -> None:
    src = _source(10)
    gen = torch.Generator().manual_seed(3)
    state = gen.get_state()
    loader = _loader(src, gen, train=False, crop_padding=2, hflip=True)
    xs, ys = zip(*loader)
    assert torch.equal(torch.cat(ys), src.labels)
    expected = (src.images.float() / 255 - 0.5) / 0.25
    assert torch.allclose(torch.cat(xs), expected, atol=1e-5)
    assert torch.equal(gen.get_state(), state)


def test_exact_normalisation_and_one_to_three_channels() -> None:
    src = _source(4)
    gen = torch.Generator().manual_seed(0)
    loader = make_loader(src, batch_size=4, device="cpu", train=False, image_size=8, channels=3,
                         mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 0.125), generator=gen, channels_last=True)
    x, _ = next(iter(loader))
    assert x.shape == (4, 3, 8, 8) and x.is_contiguous(memory_format=torch.channels_last)
    px = src.images.float() / 255
    for c, (m, s) in enumerate(zip((0.1, 0.2, 0.3), (0.5, 0.25, 0.125))):
        assert torch.allclose(x[:, c:c + 1], (px - m) / s, atol=1e-5)


def test_three_to_one_channel_uses_luminance() -> None:
    img = torch.zeros(1, 3, 4, 4, dtype=torch.uint8)
    img[:, 1] = 200                                    # pure green
    src = InMemoryImages(img, torch.zeros(1, dtype=torch.long))
    loader = make_loader(src, batch_size=1, device="cpu", train=False, image_size=4, channels=1,
                         mean=(0.0,), std=(1.0,), generator=torch.Generator())
    x, _ = next(iter(loader))
    assert x.shape == (1, 1, 4, 4)
    assert torch.allclose(x, torch.full_like(x, round(0.587 * 200) / 255), atol=1e-6)


@pytest.mark.parametrize("size", [(8, 8), (32, 32), (64, 64), (96, 96), (224, 224), (5, 7)])
def test_any_output_size(size: tuple[int, int]) -> None:
    loader = _loader(_source(6, c=3), torch.Generator().manual_seed(0), image_size=size, crop_padding=1,
                     hflip=True)
    x, y = next(iter(loader))
    assert x.shape == (4, 3, *size) and y.shape == (4,)


def test_generator_state_reproduces_an_epoch_exactly() -> None:
    src = load_splits("digits").train
    gen = torch.Generator().manual_seed(42)

    def epoch() -> list[tuple[torch.Tensor, torch.Tensor]]:
        return list(make_loader(src, batch_size=64, device="cpu", train=True, image_size=(32, 32), channels=3,
                                mean=(0.3,), std=(0.4,), crop_padding=4, hflip=True, generator=gen,
                                max_batches=5))

    state = gen.get_state()
    a = epoch()
    b = epoch()   # the generator moved on: a different shuffle and different augmentation
    gen.set_state(state)
    c = epoch()   # restored: bit-identical batches
    assert len(a) == 5
    assert all(torch.equal(xa, xc) and torch.equal(ya, yc) for (xa, ya), (xc, yc) in zip(a, c))
    assert not torch.equal(a[0][0], b[0][0])


def test_augmentation_really_crops_and_flips() -> None:
    # One image whose left half is bright: flips and shifted crops must both show up over many draws.
    img = torch.zeros(1, 1, 8, 8, dtype=torch.uint8)
    img[..., :4] = 255
    src = InMemoryImages(img.repeat(64, 1, 1, 1), torch.zeros(64, dtype=torch.long))
    gen = torch.Generator().manual_seed(0)
    x, _ = next(iter(make_loader(src, batch_size=64, device="cpu", train=True, image_size=8, channels=1,
                                 mean=(0.0,), std=(1.0,), crop_padding=2, hflip=True, generator=gen)))
    left_bright = (x[:, 0, 4, 0] > 0.5).sum().item()
    right_bright = (x[:, 0, 4, 7] > 0.5).sum().item()
    assert 0 < left_bright < 64 and 0 < right_bright < 64           # both flipped and unflipped
    assert len({tuple(row.tolist()) for row in x[:, 0, 4]}) > 3     # several distinct offsets
    assert float(x.min()) == 0.0                                     # black padding shows up somewhere


def test_store_and_per_batch_paths_agree() -> None:
    src = _source(5, c=3, h=8, w=8)
    aug = DeviceAugment(in_channels=3, in_size=(8, 8), channels=3, image_size=(12, 12), mean=(0.5,), std=(0.5,),
                        device=torch.device("cpu"), pad=2, hflip=True)
    draws = aug.draws(5, torch.Generator().manual_seed(1))
    direct = aug(src.images, draws)
    stored = aug.from_store(aug.prepare(src.images), torch.arange(5), draws)
    assert torch.allclose(direct, stored, atol=2.5 / 255 / 0.5)   # differ only by uint8 rounding of the resize


def test_max_batches_and_drop_last() -> None:
    src = _source(10)
    gen = torch.Generator().manual_seed(0)
    assert len(_loader(src, gen)) == 3
    assert len(_loader(src, gen, drop_last=True)) == 2
    assert len(_loader(src, gen, max_batches=1)) == 1 and len(list(_loader(src, gen, max_batches=1))) == 1
    with pytest.raises(InvalidOptionError):
        _loader(src, gen, batch_size=0)
    with pytest.raises(InvalidOptionError):
        _loader(src, gen, mean=(0.1, 0.2), std=(1.0, 1.0))


def test_streaming_source_goes_through_the_same_augmentation() -> None:
    class Stream(torch.utils.data.Dataset):
        channels, size = 1, (8, 8)

        def __init__(self) -> None:
            self.src = _source(9)

        def __len__(self) -> int:
            return 9

        def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
            return self.src.images[i], int(self.src.labels[i])

    stream = Stream()
    gen = torch.Generator().manual_seed(5)
    state = gen.get_state()
    kw = dict(batch_size=4, device="cpu", image_size=(16, 16), channels=3, mean=(0.5,), std=(0.5,),
              crop_padding=2, hflip=True, generator=gen, num_workers=0)
    a = list(make_loader(stream, train=True, **kw))
    gen.set_state(state)
    b = list(make_loader(stream, train=True, **kw))
    assert [x.shape for x, _ in a] == [(4, 3, 16, 16), (4, 3, 16, 16), (1, 3, 16, 16)]
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    val = list(make_loader(stream, train=False, **kw))
    assert torch.equal(torch.cat([y for _, y in val]), stream.src.labels)
