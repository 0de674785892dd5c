"""Keyframe selection: the scorers over a pack's embed/motion, the composite score D, fixed
intervals, clip-length bounds, target rate."""

from __future__ import annotations

import numpy as np
import pytest
from fake_pack import FakePack, moving_square, textured_pan

from m3cvc_codec import CodecError
from m3cvc_codec.keyframes import (
    KeyframeParams,
    MotionScorer,
    SemanticScorer,
    select_clips,
    select_composite,
    select_interval,
    threshold_for_rate,
)
from m3cvc_codec.packs import load_pack


def covers(clips, n):
    assert clips[0][0] == 0
    for (a, na), (b, _) in zip(clips, clips[1:]):
        assert a + na == b
    assert clips[-1][0] + clips[-1][1] == n


def scorers(frames, pack=None):
    pack = pack or FakePack()
    sem, mot = SemanticScorer(pack, batch=5), MotionScorer(pack)
    for f in frames:
        sem.add(f)
        mot.add(f)
    return sem, mot


class Recorder:
    """A stand-in for a pack's scorers that records how the scorers call it."""

    def __init__(self):
        self.embed_batches, self.feature_batches, self.motion_calls = [], [], []

    def embed(self, frames):
        self.embed_batches.append(len(frames))
        return frames.reshape(len(frames), -1)[:, :4].astype(np.float64) + 1.0

    def motion_features(self, frames):
        self.feature_batches.append(len(frames))
        return [np.array([float(f.mean())]) for f in frames]

    def motion(self, before, after):
        self.motion_calls.append((len(before), len(after)))
        return np.array([float(b[0] - a[0]) for a, b in zip(before, after)])


def test_scorers_are_memoising_wrappers_over_the_pack():
    pack = Recorder()
    frames = np.stack([np.full((8, 8, 3), 10 * i, np.uint8) for i in range(7)])
    frames[3, 0, 0] = (1, 2, 250)
    sem, mot = scorers(frames, pack)
    assert pack.feature_batches == [1] * 7  # features are kept frame by frame, never the frames
    assert mot(5, 2) == pytest.approx(30.0)  # motion(before=frame l, after=frame n)
    assert mot(2, 5) == pytest.approx(-30.0)
    assert mot(5, 2) == pytest.approx(30.0) and pack.motion_calls == [(1, 1), (1, 1)]  # memoised
    assert sem(4, 4) == pytest.approx(0.0)
    assert sem(3, 1) > 0.0 and sem(3, 1) == pytest.approx(sem(1, 3))
    assert pack.embed_batches == [5, 2]  # batches of 5, the rest when first asked
    assert sem.embeddings.shape == (7, 4) and np.allclose(np.linalg.norm(sem.embeddings, axis=1), 1.0)


def test_motion_lookahead_batches_pairs_and_gives_the_same_values():
    frames = np.stack([np.full((8, 8, 3), 7 * i, np.uint8) for i in range(9)])
    plain, ahead = Recorder(), Recorder()
    ahead.motion_batch = 4  # a scorer's preferred batch (RAFT's) is the default lookahead
    ahead.embed_batch = 3
    _, one = scorers(frames, plain)
    mot = MotionScorer(ahead)
    sem = SemanticScorer(ahead)
    assert mot.lookahead == 4 and sem.batch == 3
    for f in frames:
        mot.add(f)
    p = KeyframeParams(lambda1=0.0, lambda2=1.0, threshold=20.0)
    assert select_composite(9, None, mot, p) == select_composite(9, None, one, p)
    # motion(n, l) = 7 (n - l): (2, 0) measures (2..5, 0) at once and 3 is a keyframe; (5, 3)
    # measures (5..8, 3) and 6 is one; (8, 6) is the last frame's pair alone
    assert ahead.motion_calls == [(4, 4), (4, 4), (1, 1)]
    assert all(c == (1, 1) for c in plain.motion_calls)
    assert MotionScorer(ahead, lookahead=1).lookahead == 1
    with pytest.raises(CodecError, match="lookahead"):
        MotionScorer(ahead, lookahead=0)


def test_scorers_reject_answers_of_the_wrong_shape():
    pack = Recorder()
    pack.embed = lambda frames: np.zeros((len(frames) + 1, 3))
    sem = SemanticScorer(pack, batch=2)
    sem.add(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(CodecError, match="embed returned shape"):
        sem.add(np.zeros((8, 8, 3), np.uint8))
    pack = Recorder()
    pack.motion = lambda before, after: np.zeros(2)
    mot = MotionScorer(pack)
    mot.add(np.zeros((8, 8, 3), np.uint8))
    mot.add(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(CodecError, match="motion returned shape"):
        mot(1, 0)


def test_scene_cut_is_a_keyframe():
    frames = moving_square(24, 128, 80, step=1, cut_at=13)
    sem, mot = scorers(frames)
    clips = select_composite(len(frames), sem, mot, KeyframeParams(lambda1=1.0, lambda2=0.02, threshold=0.3))
    covers(clips, 24)
    assert [a for a, _ in clips] == [0, 13]


def test_motion_term_alone_cuts_on_motion():
    frames = textured_pan(20, 128, 80, step=1)
    sem, mot = scorers(frames)
    assert 0.7 < mot(1, 0) < 1.3  # a 1-pixel pan
    # only motion counts: a keyframe once the accumulated flow passes the threshold
    clips = select_composite(20, sem, mot, KeyframeParams(lambda1=0.0, lambda2=1.0, threshold=mot(4, 0) - 1e-6))
    covers(clips, 20)
    assert 2 <= len(clips) <= 10
    still = select_composite(20, sem, mot, KeyframeParams(lambda1=0.0, lambda2=1.0, threshold=1e6))
    assert still == [(0, 20)]


def test_motion_scale_is_working_pixels():
    mot = MotionScorer(load_pack("lite"))  # measured at 160x100, reported in 512x320 pixels
    for f in textured_pan(2, 512, 320, step=8):
        mot.add(f)
    assert mot(1, 0) == pytest.approx(8, rel=0.2)


def test_min_and_max_clip():
    always = lambda n, l: 1.0
    never = lambda n, l: 0.0
    p = KeyframeParams(lambda1=1.0, lambda2=0.0, threshold=0.5, min_clip=3, max_clip=8)
    clips = select_composite(20, always, never, p)
    covers(clips, 20)
    assert all(3 <= c <= 8 for _, c in clips)
    assert [c for _, c in clips[:-1]] == [3] * (len(clips) - 1)
    clips = select_composite(20, never, never, p)
    assert [c for _, c in clips] == [8, 8, 4]


def test_short_tail_rules():
    p = KeyframeParams(interval=4, min_clip=2, max_clip=5)
    assert select_interval(9, p) == [(0, 4), (4, 5)]  # 1-frame tail merged (4 + 1 <= 5)
    p = KeyframeParams(interval=5, min_clip=3, max_clip=5)
    assert select_interval(11, p) == [(0, 5), (5, 3), (8, 3)]  # tail lengthened to min_clip
    assert select_interval(1, p) == [(0, 1)]  # a one-frame video is one clip
    assert select_interval(10, KeyframeParams(interval=4)) == [(0, 4), (4, 4), (8, 2)]


def test_interval_ignores_scores():
    boom = lambda n, l: 1 / 0
    assert select_clips(6, boom, boom, KeyframeParams(interval=3)) == [(0, 3), (3, 3)]


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(min_clip=0), "min_clip"),
        (dict(min_clip=5, max_clip=4), "max_clip"),
        (dict(interval=40), "longer than max_clip"),
        (dict(interval=0), "interval"),
        (dict(lambda1=-1.0), "negative"),
        (dict(threshold=float("nan")), "finite"),
    ],
)
def test_bad_params(kw, match):
    with pytest.raises(CodecError, match=match):
        KeyframeParams(**kw)


def test_target_rate_bisection():
    rng = np.random.default_rng(1)
    table = rng.random((60, 60))
    sem = lambda n, l: table[n, l]
    zero = lambda n, l: 0.0
    p = KeyframeParams(lambda1=1.0, lambda2=0.0, min_clip=2, max_clip=16)
    sizes = []
    for clips_wanted in (30, 12, 6):
        budget = 100 + clips_wanted * 50
        th, clips, met = threshold_for_rate(60, sem, zero, p, budget, header_bytes=100, clip_bytes=50)
        assert met and 100 + 50 * len(clips) <= budget
        assert clips == select_composite(60, sem, zero, p, th)
        sizes.append(len(clips))
    assert sizes[0] > sizes[1] >= sizes[2]
    th, clips, met = threshold_for_rate(60, sem, zero, p, 120, header_bytes=100, clip_bytes=50)
    assert not met and len(clips) == 4  # only max_clip forces keyframes


def test_deterministic():
    frames = moving_square(16, 128, 80, step=2, cut_at=9)
    a = select_composite(16, *scorers(frames), KeyframeParams())
    b = select_composite(16, *scorers(frames), KeyframeParams())
    assert a == b
