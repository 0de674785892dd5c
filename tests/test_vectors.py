"""Conformance vectors: every vector reads exactly as its .json says, and the generator
reproduces them byte for byte."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from conftest import ROOT, VECTORS

import m3cvc_format as m
from m3cvc_format import cli_info as info

VECTOR_FILES = sorted(VECTORS.glob("*.m3v"))


def _load_tool(name: str):
    """A script of tools/ as a module, loaded from its file (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_vectors = _load_tool("make_vectors")


def expected(path):
    return json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))


def test_there_are_vectors_of_every_required_kind():
    names = {p.stem for p in VECTOR_FILES}
    for required in (
        "minimal",
        "clips-modes",
        "grid-32x32",
        "grid-64x64",
        "text-utf8",
        "text-lzw",
        "text-tokans1",
        "unterminated",
        "cut-off",
        "ancillary",
        "bad-signature",
        "crc-mismatch",
        "truncated-header",
        "length-beyond-file",
    ):
        assert required in names


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.stem)
def test_vector(path):
    want = expected(path)
    data = path.read_bytes()
    assert len(data) == want["size"]
    if not want["valid"]:
        error = make_vectors.first_error(data)
        assert type(error).__name__ == want["error"]
        assert error.offset == want["offset"]
        try:
            readable = [c.index for c in m.Reader(data, on_damage="skip").clips()]
        except m.M3VError:
            readable = []
        assert readable == want["readable_clips"]
        try:
            decodable = [c.index for c in m.Reader(data, on_damage="skip").decoded_clips()]
        except m.M3VError:
            decodable = []
        assert decodable == want["decodable_clips"]
        return
    reader = m.Reader(data, on_damage="skip")
    h = reader.header
    wh = want["header"]
    assert [
        h.width,
        h.height,
        [h.fps.numerator, h.fps.denominator],
        h.frame_count,
        h.pack_id,
        h.pack_hash.hex(),
        [h.grid_h, h.grid_w],
        h.vocab_size,
        int(h.text_codec),
        h.stream_seed,
        list(h.prior),
        h.metadata,
    ] == [
        wh["width"],
        wh["height"],
        wh["fps"],
        wh["frame_count"],
        wh["pack_id"],
        wh["pack_hash"],
        wh["grid"],
        wh["vocab_size"],
        wh["text_codec"],
        wh["stream_seed"],
        wh["prior"],
        wh["metadata"],
    ]
    records = list(reader.clips())
    assert len(records) == len(want["clips"])
    in_order = list(m.Reader(data, on_damage="skip").decoded_clips())
    maps = {}
    for record, wc, sequential in zip(records, want["clips"], in_order):
        clip = reader.decode_clip(record.index, maps) if reader.index_source == "trailer" else sequential
        assert np.array_equal(sequential.index_map, clip.index_map)
        assert (
            record.offset,
            record.size,
            clip.index,
            clip.first_frame,
            clip.frame_count,
            clip.mode.name.lower(),
            clip.seed,
        ) == (wc["offset"], wc["size"], wc["index"], wc["first_frame"], wc["frame_count"], wc["mode"], wc["seed"])
        assert m.decode_seed(h.stream_seed, clip.index, clip.seed) == wc["decode_seed"]
        assert (clip.keyframe_text, clip.clip_text) == (wc["keyframe_text"], wc["clip_text"])
        assert np.array_equal(clip.index_map, np.array(wc["index_map"]))
        assert [[k, b.hex()] for k, b in clip.ancillary] == wc["ancillary"]
    assert reader.index_source == want["index"]
    assert (reader.damage[0].offset if reader.truncated else None) == want["truncated_at"]


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.stem)
def test_m3v_info_on_vector(path, capsys):
    want = expected(path)
    code = info.main([str(path), "--verify", "--json"])
    out, err = capsys.readouterr()
    if want["valid"] and want["truncated_at"] is None:
        assert code == 0, err
        doc = json.loads(out)
        assert [c["clip_text"] for c in doc["clips"]] == [c["clip_text"] for c in want["clips"]]
    else:
        assert code == 1 and len(err.strip().splitlines()) == 1 and "at byte" in err


def test_generator_reproduces_the_vectors():
    assert make_vectors.main(["--check"]) == 0
