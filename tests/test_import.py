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


def test_reading_and_decoding_never_import_torch(tmp_path):
    path = tmp_path / "s.m3v"
    path.write_bytes(make_stream())
    loaded = _modules_after(
        f"import m3cvc_format as m\nr = m.Reader({str(path)!r})\n[c.decode(r.header) for c in r]\n"
        f"from m3cvc_format import summary; summary.summarize({str(path)!r})"
    )
    assert "torch" not in loaded and "m3cvc_codec" not in loaded
