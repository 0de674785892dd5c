"""The prompts file of the description dialogue (m3cvc_codec.prompts): the shipped default,
placeholders and the first keyframe's [[ ]] sections, one-line errors, and the PRMT record."""

from __future__ import annotations

import copy
import json

import pytest

from m3cvc_codec.errors import CodecError
from m3cvc_codec.prompts import (
    CLIP_PLACEHOLDERS,
    FORMAT,
    KEYFRAME_PLACEHOLDERS,
    PromptsError,
    default_prompts_path,
    default_prompts_text,
    expand_turn,
    load_prompts,
    parse_prompts,
)
from m3cvc_format.prompts import check_prompts, pack_prompts

FIRST = {"keyframe": True, "previous_keyframe": None, "previous_text": None}
LATER = {"keyframe": True, "previous_keyframe": True, "previous_text": "a red car"}


def minimal() -> dict:
    return {
        "format": FORMAT,
        "name": "mine",
        "version": 2,
        "keyframe": {"1": ["{keyframe}Describe it.[[ Before: {previous_text}]]"]},
        "clip": ["{clip}Motion given {keyframe_text}?"],
    }


def test_shipped_default_is_valid_and_has_the_paper_turn_counts():
    prompts = load_prompts()
    assert prompts.turn_counts == [1, 2, 4] and prompts.name == "m3cvc-default" and prompts.version >= 1
    assert len(prompts.clip) == 1 and "{clip}" in prompts.clip[0] and "{keyframe_text}" in prompts.clip[0]
    four = prompts.keyframe_turns(4)
    assert "{keyframe}" in four[0] and "{previous_keyframe}" in four[1] and "{previous_text}" in four[1]
    assert "Summarize" in four[3]
    assert json.loads(default_prompts_text()) == json.loads(default_prompts_path().read_text())


@pytest.mark.parametrize(("turns", "first", "later"), [(4, 3, 4), (2, 2, 2), (1, 1, 1)])
def test_first_keyframe_skips_the_differences(turns, first, later):
    """4 turns: the 'differences' turn is skipped for the first keyframe; 2 and 1 turns drop
    the bracketed part that names the previous keyframe, and keep the turn."""
    turns_text = load_prompts().keyframe_turns(turns)
    got_first = [expand_turn(t, FIRST, KEYFRAME_PLACEHOLDERS) for t in turns_text]
    got_later = [expand_turn(t, LATER, KEYFRAME_PLACEHOLDERS) for t in turns_text]
    assert sum(s is not None for s in got_first) == first and sum(s is not None for s in got_later) == later
    for segments in got_first:
        assert segments is None or all(v != "previous_keyframe" for _, v in segments)
    later_text = "".join(v for segments in got_later for k, v in segments if k == "text")
    assert "a red car" in later_text and "[[" not in later_text and "{" not in later_text


def test_expand_turn_places_images_and_fills_text():
    segments = expand_turn("A {keyframe} B[[ C {previous_keyframe} D {previous_text}]] E", LATER, KEYFRAME_PLACEHOLDERS)
    assert segments == [
        ("text", "A "),
        ("image", "keyframe"),
        ("text", " B C "),
        ("image", "previous_keyframe"),
        ("text", " D a red car E"),
    ]
    assert expand_turn("A {keyframe} B[[ C {previous_text}]] E", FIRST, KEYFRAME_PLACEHOLDERS) == [
        ("text", "A "),
        ("image", "keyframe"),
        ("text", " B E"),
    ]
    assert expand_turn("{previous_text} only", FIRST, KEYFRAME_PLACEHOLDERS) is None
    clip = expand_turn(
        "{clip}Given {keyframe_text}.", {"clip": 1, "keyframe": 1, "keyframe_text": "x"}, CLIP_PLACEHOLDERS
    )
    assert clip == [("video", "clip"), ("text", "Given x.")]
    # braces that are not a placeholder name stay as they are
    assert expand_turn('{keyframe}Answer as {"a": 1}', LATER, KEYFRAME_PLACEHOLDERS)[1] == (
        "text",
        'Answer as {"a": 1}',
    )


def test_record_is_a_valid_prmt_map():
    prompts = load_prompts()
    record = prompts.record(2, model="Qwen/Qwen2-VL-7B-Instruct", settings={"max_new_tokens": 9, "greedy": True})
    assert record == {
        "keyframe": list(prompts.keyframe_turns(2)),
        "clip": list(prompts.clip),
        "name": "m3cvc-default",
        "version": prompts.version,
        "turns": 2,
        "model": "Qwen/Qwen2-VL-7B-Instruct",
        "settings": {"max_new_tokens": 9, "greedy": True},
    }
    assert check_prompts(record) == record and pack_prompts(record)
    assert "model" not in prompts.record(1) and "settings" not in prompts.record(1)
    data = minimal()
    data["system"] = "Be brief."
    assert parse_prompts(data).record(1)["system"] == "Be brief."


def test_a_copied_and_edited_file_loads(tmp_path):
    data = json.loads(default_prompts_text())
    data["name"], data["version"] = "brief", 7
    data["keyframe"]["4"][3] = "{keyframe}Summarize in 10 words."
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    prompts = load_prompts(path)
    assert (prompts.name, prompts.version, prompts.keyframe_turns(4)[3]) == (
        "brief",
        7,
        "{keyframe}Summarize in 10 words.",
    )
    assert prompts.source == str(path)


def _broken(change) -> dict:
    data = copy.deepcopy(minimal())
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format="m3cvc-prompts/2"), "format 'm3cvc-prompts/2' is not supported"),
        (lambda d: d.pop("format"), "'format' must be 'm3cvc-prompts/1'"),
        (lambda d: d.update(name=""), "'name' must be a non-empty string"),
        (lambda d: d.update(version=-1), "'version' must be an integer >= 0"),
        (lambda d: d.update(version="1"), "'version' must be an integer >= 0"),
        (lambda d: d.update(extra=1), "unknown key 'extra'"),
        (lambda d: d.update(system=3), "'system' must be a string"),
        (lambda d: d.update(keyframe=[]), "'keyframe' must be an object"),
        (lambda d: d["keyframe"].update({"x": ["{keyframe}"]}), "keyframe['x']: the key must be a turn count"),
        (lambda d: d["keyframe"].update({"2": ["{keyframe}a"]}), "keyframe['2'] has 1 turns, not 2"),
        (lambda d: d["keyframe"].update({"1": ["{keyframe} {previus_text}"]}), "unknown placeholder {previus_text}"),
        (lambda d: d["keyframe"].update({"1": ["{keyframe} {clip}"]}), "unknown placeholder {clip}"),
        (lambda d: d["keyframe"].update({"1": [""]}), "keyframe['1'][0] must be a non-empty string"),
        (lambda d: d["keyframe"].update({"1": ["{keyframe} [[ a"]}), "'[[' without ']]'"),
        (lambda d: d["keyframe"].update({"1": ["{keyframe} a ]]"]}), "']]' without '[['"),
        (lambda d: d["keyframe"].update({"1": ["{keyframe} [[a [[b]] ]]"]}), "cannot nest"),
        (lambda d: d["keyframe"].update({"1": ["Describe."]}), "no turn shows {keyframe} for a later keyframe"),
        (lambda d: d["keyframe"].update({"1": ["[[{keyframe}]]{previous_text}"]}), "the first keyframe gets none"),
        (
            lambda d: d["keyframe"].update({"2": ["{previous_keyframe}{keyframe}a", "b"]}),
            "no turn shows {keyframe} for the first keyframe",
        ),
        (lambda d: d.update(clip="{clip}"), "clip must be a non-empty list"),
        (lambda d: d.update(clip=["Motion of {keyframe}?"]), "clip: no turn shows {clip}"),
        (lambda d: d.update(clip=["{clip} {previous_text}"]), "unknown placeholder {previous_text}"),
    ],
)
def test_bad_prompts_give_one_line(change, message):
    with pytest.raises(PromptsError) as err:
        parse_prompts(_broken(change), source="p.json")
    text = str(err.value)
    assert message in text and text.startswith("p.json") and "\n" not in text
    assert isinstance(err.value, CodecError)


def test_file_errors(tmp_path):
    with pytest.raises(PromptsError, match="no such prompts file"):
        load_prompts(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": ')
    with pytest.raises(PromptsError, match=r"invalid JSON at line 1 column"):
        load_prompts(bad)
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(PromptsError, match="not UTF-8"):
        load_prompts(bad)
    with pytest.raises(PromptsError, match=r"no 3-turn keyframe dialogue \(it has 1, 2, 4\)"):
        load_prompts().keyframe_turns(3)
