"""A script written against PyAV's API, and nothing else.

``exercise(opener, path)`` opens ``path`` with ``opener`` -- ``av.open`` for a real video, or
``m3cvc_format.open`` for an `.m3v` stream -- and uses it as PyAV code does: stream properties,
decoding every frame, seeking by stream time base and by ``av.time_base`` then decoding forward
to a target, seeking while iterating, demuxing and decoding packets.  It checks the invariants
PyAV guarantees for any seekable video and returns a summary for the caller to compare.
tests/test_pyav_compat.py runs it unchanged on both.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np


def exercise(opener, path) -> dict:
    summary: dict = {}
    with opener(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        assert stream.thread_type.name == "AUTO"  # PyAV's ThreadType (imageio reads .name)
        assert stream.type == "video" and stream.index == 0
        assert isinstance(stream.average_rate, Fraction) and isinstance(stream.time_base, Fraction)
        width, height = stream.codec_context.width, stream.codec_context.height
        assert (width, height) == (stream.width, stream.height)
        summary.update(
            codec=stream.codec_context.name,
            width=width,
            height=height,
            rate=stream.average_rate,
            time_base=stream.time_base,
            frames=stream.frames,
            duration_s=float(stream.duration * stream.time_base),
            container_duration_s=container.duration / av.time_base,
        )

        # 1. every frame, in order
        pts, keys, images = [], [], []
        for frame in container.decode(video=0):
            assert isinstance(frame, av.VideoFrame)
            rgb = frame.to_ndarray(format="rgb24")
            assert rgb.shape == (height, width, 3) and rgb.dtype == np.uint8
            assert frame.time == float(frame.pts * frame.time_base)
            pts.append(frame.pts)
            keys.append(frame.key_frame)
            images.append(rgb)
        assert pts == sorted(set(pts)) and keys[0]
        assert frame.to_image().size == (width, height)
        summary.update(decoded=len(pts), keyframes=sum(keys))
        key_pts = [p for p, k in zip(pts, keys) if k]

        # 2. seek to a frame by stream time base; decode forward from the keyframe before it
        index = max(i for i, k in enumerate(keys) if not k) if not all(keys) else len(pts) // 2
        index = min(index, len(pts) * 2 // 3)
        while keys[index] and index > 0:
            index -= 1
        target = pts[index]
        container.seek(target, stream=stream)
        first = hit = None
        for frame in container.decode(stream):
            if first is None:
                first = frame
            if frame.pts >= target:
                hit = frame
                break
        assert first.key_frame and first.pts in key_pts and first.pts <= target
        assert hit.pts == target and np.array_equal(hit.to_ndarray(format="rgb24"), images[index])
        summary.update(seek_target=target, seek_landed=first.pts)

        # 3. the same by time in av.time_base units, with no stream
        container.seek(int(target * stream.time_base * av.time_base))
        again = next(container.decode(video=0))
        assert again.key_frame and again.pts == first.pts

        # 4. a float offset is refused
        try:
            container.seek(0.5)
        except TypeError:
            summary["float_seek"] = "TypeError"

        # 5. seek while an iteration runs: it goes on from the new position
        container.seek(0)
        frames = container.decode(video=0)
        head = [next(frames).pts for _ in range(2)]
        container.seek(key_pts[-1], stream=stream)
        moved = next(frames).pts
        assert head == pts[:2] and moved == key_pts[-1]

        # 6. demux, and decode the packets
        container.seek(0)
        packets = key_packets = total = 0
        via_packets = []
        for packet in container.demux(stream):
            if packet.dts is None:  # the flush packet at the end
                assert packet.size == 0
            else:
                assert packet.stream is stream and packet.time_base == stream.time_base
                assert len(bytes(packet)) == packet.size and (packet.size > 0 or not packet.is_keyframe)
                packets += 1
                key_packets += packet.is_keyframe
                total += packet.size
            for frame in packet.decode():
                via_packets.append(frame.pts)
        assert sorted(via_packets) == pts
        summary.update(packets=packets, key_packets=key_packets, packet_bytes=total)
    return summary
