"""m3cvc_codec.models.hub: how models are found (folder, --models DIR, offline) and how not
finding one reads."""

from __future__ import annotations

import pytest

from m3cvc_codec import CodecError
from m3cvc_codec.models.hub import (
    MissingExtraError,
    ModelError,
    ModelNotFoundError,
    load_model,
    locate,
    offline,
    require_full,
    torch_device,
    torch_dtype,
)
from m3cvc_codec.packs.config import RuntimeOptions


def test_errors_are_codec_errors():
    assert issubclass(ModelNotFoundError, ModelError) and issubclass(MissingExtraError, ModelError)
    assert issubclass(ModelError, CodecError) and issubclass(ModelError, ValueError)


def test_locate_follows_the_three_rules(tmp_path):
    folder = tmp_path / "my-clip"
    folder.mkdir()
    assert locate(str(folder)) == str(folder)  # 1. an existing folder
    assert locate("openai/clip-vit-base-patch32") == "openai/clip-vit-base-patch32"  # 3. an id, as is
    models = tmp_path / "models"
    for layout in ("org/full", "name-only", "org--dashed"):
        (models / layout).mkdir(parents=True)
    assert locate("org/full", models) == str(models / "org" / "full")  # 2. DIR/org/name
    assert locate("other/name-only", models) == str(models / "name-only")  # then DIR/name
    assert locate("org/dashed", models) == str(models / "org--dashed")  # then DIR/org--name


def test_a_models_folder_never_falls_back_to_a_download(tmp_path):
    with pytest.raises(ModelNotFoundError) as err:
        locate("Qwen/Qwen2-VL-7B-Instruct", tmp_path, what="vision-language model")
    message = str(err.value)
    assert "\n" not in message and "Qwen/Qwen2-VL-7B-Instruct" in message
    assert f"--local-dir {tmp_path / 'Qwen/Qwen2-VL-7B-Instruct'}" in message
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        locate("a/b", tmp_path / "absent")
    with pytest.raises(ModelNotFoundError, match=r"folder '\./nothing/here' does not exist"):
        locate("./nothing/here")
    with pytest.raises(ModelError, match="empty model name"):
        locate("  ")


@pytest.mark.parametrize(
    ("value", "expected"), [("", False), ("0", False), ("false", False), ("1", True), ("YES", True)]
)
def test_offline_reads_hf_hub_offline(monkeypatch, value, expected):
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert offline() is expected
    assert offline("some/dir") is True  # a models folder is always offline


def test_load_model_offline_and_missing_is_one_line(monkeypatch, tmp_path):
    """HF_HUB_OFFLINE: the loader gets local_files_only, and the loader's own failure (here
    transformers' real one, for an id that is not in an empty cache) becomes one line."""
    pytest.importorskip("transformers")
    from transformers import AutoConfig

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    seen = {}

    def loader(location, **kwargs):
        seen.update(kwargs, location=location)
        return "model"

    assert load_model(loader, "org/name", what="test model") == "model"
    assert seen == {"location": "org/name", "local_files_only": True}
    with pytest.raises(ModelNotFoundError) as err:
        load_model(AutoConfig.from_pretrained, "org/not-cached", what="CLIP model")
    message = str(err.value)
    assert "\n" not in message and "CLIP model 'org/not-cached' is not available" in message
    assert "HF_HUB_OFFLINE" in message and "--models DIR" in message


def test_load_model_from_a_damaged_folder(tmp_path):
    pytest.importorskip("transformers")
    from transformers import AutoConfig

    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_text("{ not json")
    with pytest.raises(ModelError, match=r"CLIP model in '.*broken' could not be loaded") as err:
        load_model(AutoConfig.from_pretrained, str(folder), what="CLIP model")
    assert not isinstance(err.value, ModelNotFoundError) and "\n" not in str(err.value)


def test_require_full_names_the_missing_modules(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingExtraError, match=r"^the dialogue needs transformers \(the full extra\): pip install"):
        require_full("the dialogue")


def test_device_and_dtype_are_checked():
    torch = pytest.importorskip("torch")
    assert torch_device(None) == torch.device("cpu")
    assert torch_dtype(None) is torch.float32
    assert torch_dtype(RuntimeOptions(dtype="bf16")) is torch.bfloat16
    with pytest.raises(ModelError, match="float16 needs a GPU"):
        torch_dtype(RuntimeOptions(dtype="float16"))
    with pytest.raises(ModelError, match="is not one of float32"):
        torch_dtype(RuntimeOptions(dtype="int8"))
    with pytest.raises(ModelError, match="not a torch device"):
        torch_device(RuntimeOptions(device="toaster"))
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="CUDA is not available"):
            torch_device(RuntimeOptions(device="cuda"))
