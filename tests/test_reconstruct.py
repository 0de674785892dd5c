"""Clip reconstruction through the lite pack (Pack.reconstruct_clip): DIS-flow interpolation
between decoded keyframes, prediction holds."""

from __future__ import annotations

import numpy as np
import pytest
from fake_pack import moving_square, textured_pan

from m3cvc_codec.packs import load_pack


@pytest.fixture(scope="module")
def pack():
    return load_pack("lite")


def interpolate_clip(pack, k0, k1, frame_count):
    return list(pack.reconstruct_clip(k0, k1, "", frame_count, 0))


def square_x(frame):
    cols = np.where((frame > 200).all(axis=-1).any(axis=0))[0]
    return cols.mean()


def test_interpolation_moves_between_keyframes(pack):
    k0, k1 = moving_square(2, 128, 80, step=16)  # square at x 8..24, then 24..40
    frames = interpolate_clip(pack, k0, k1, 4)
    assert len(frames) == 4
    assert np.array_equal(frames[0], k0)
    xs = [square_x(f) for f in frames]
    assert xs == sorted(xs)  # moves steadily right
    assert abs(xs[2] - (square_x(k0) + square_x(k1)) / 2) < 3  # halfway at t = m/2


def test_interpolation_beats_cross_fade_on_a_pan(pack):
    k0, truth, k1 = textured_pan(3, 128, 80, step=3)  # truth: the frame halfway
    mid = interpolate_clip(pack, k0, k1, 2)[1]
    fade = (k0.astype(float) + k1) / 2
    inner = (slice(8, -8), slice(8, -8))
    err = np.abs(mid.astype(float) - truth)[inner].mean()
    assert err < np.abs(fade - truth)[inner].mean() / 2


def test_prediction_holds_keyframe(pack):
    k0 = moving_square(1, 64, 48)[0]
    frames = list(pack.reconstruct_clip(k0, None, "", 3, 0))
    assert len(frames) == 3 and all(np.array_equal(f, k0) for f in frames)


def test_one_frame_clip(pack):
    k0, k1 = moving_square(2, 64, 48)
    assert len(interpolate_clip(pack, k0, k1, 1)) == 1


def test_text_and_seed_do_not_change_lite_clips(pack):
    k0, k1 = textured_pan(2, 128, 80, step=3)
    a = interpolate_clip(pack, k0, k1, 3)
    b = list(pack.reconstruct_clip(k0, k1, "a red car turns left", 3, 2**63 + 5))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
