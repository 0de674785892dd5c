"""`import m3cvc_format` stays light: nothing heavy is loaded until it is used, and
reading a stream never loads torch (the base install has none)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import make_stream

HEAVY = ("torch", "numpy", "construct", "constriction", "av", "msgpack")


def _modules_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nimport json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True, text=True).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_import_loads_nothing_heavy():
    loaded = _modules_after("import m3cvc_format")
    assert not loaded & set(HEAVY)


def test_public_api_is_listed_and_resolves():
    import m3cvc_format

    for name in m3cvc_format.__all__:
        assert getattr(m3cvc_format, name) is not None
    assert "Reader" in m3cvc_format.__all__ and "Writer" in m3cvc_format.__all__


# The public names before the modules were renamed and split (issue 10): every one still resolves.
NAMES_BEFORE_THE_SPLIT = [
    "ChecksumError",
    "ChunkType",
    "Clip",
    "ClipRecord",
    "Damage",
    "DecoderNotFoundError",
    "FrameSource",
    "Header",
    "IndexEntry",
    "IndexMapCoder",
    "IndexMapPayload",
    "LimitError",
    "M3VError",
    "MalformedError",
    "MissingIndexError",
    "MissingReferenceError",
    "Mode",
    "PayloadError",
    "Reader",
    "SIGNATURE",
    "SignatureError",
    "TextCodec",
    "TruncatedError",
    "UnknownChunkError",
    "UnsupportedVersionError",
    "VERSION_MAJOR",
    "VERSION_MINOR",
    "Writer",
    "available_frame_decoders",
    "decode_index_map",
    "decode_seed",
    "decode_text",
    "describe",
    "encode_index_map",
    "encode_text",
    "open",
    "write",
]


def test_names_from_before_the_split_still_resolve():
    import m3cvc_format
    from m3cvc_format import mkv

    assert set(NAMES_BEFORE_THE_SPLIT) <= set(m3cvc_format.__all__)
    assert callable(m3cvc_format.describe) and m3cvc_format.describe.__module__ == "m3cvc_format.structure"
    for name in mkv.__all__:  # the Matroska facade over ebml, mkv_mux, mkv_extract, mkv_preview
        assert getattr(mkv, name) is not None
    assert {"mux", "extract_m3v", "attachments", "MKVError"} <= set(mkv.__all__)


def test_cli_modules_load_nothing_heavy():
    loaded = _modules_after(
        "import m3cvc_format.cli, m3cvc_format.cli_info, m3cvc_format.cli_mux, m3cvc_format.cli_demux"
    )
    assert not loaded & set(HEAVY)


def test_reading_and_decoding_never_import_torch(tmp_path):
    path = tmp_path / "s.m3v"
    path.write_bytes(make_stream())
    loaded = _modules_after(
        f"import m3cvc_format as m\nr = m.Reader({str(path)!r})\n[c.decode(r.header) for c in r]\n"
        f"from m3cvc_format import summary; summary.summarize({str(path)!r})"
    )
    assert "torch" not in loaded and "m3cvc_codec" not in loaded
