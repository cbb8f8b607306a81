"""The hub profile: config and overrides, loading (tiny models saved as local snapshots), load errors, download."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from service import InvalidInputError, ModelLoadError, ModelService
from service.models.download import download_model, main as download_main
from service.models.loading import HUB_KEYS, HubModelSpec, load_hub_config
from service.models.tiny import load_tiny, save_tiny


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hub")
    return {key: Path(save_tiny(key, str(root / key.replace(".", "-")))) for key in HUB_KEYS}


def _write_config(path: Path, entries: dict[str, str]) -> Path:
    lines = []
    for key, model in entries.items():
        lines += [f"[{key}]", f'model = "{model}"', 'revision = "main"', ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_default_config_pins_a_revision_for_every_hub_model() -> None:
    specs = load_hub_config()
    assert set(specs) == set(HUB_KEYS)
    assert specs["generation"].model == "openai-community/gpt2"
    assert specs["qa"].model == "distilbert/distilbert-base-cased-distilled-squad"
    assert specs["sentiment"].model == "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
    assert specs["translation.en-zh"].model == "Helsinki-NLP/opus-mt-en-zh"
    assert specs["translation.zh-en"].model == "Helsinki-NLP/opus-mt-zh-en"
    full_commit = re.compile(r"[0-9a-f]{40}")
    unpinned = {key for key, spec in specs.items() if not full_commit.fullmatch(spec.revision or "")}
    # en-zh alone follows "main" (its safetensors live in the conversion pull request; hub_models.toml says why).
    assert unpinned == {"translation.en-zh"} and specs["translation.en-zh"].revision == "main"
    assert specs["translation.en-zh"].source_prefix == ">>cmn_Hans<< "


def test_a_user_config_overrides_only_its_tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "mine.toml"
    config.write_text('[qa]\nmodel = "someone/better-qa"\nrevision = "abc123"\n', encoding="utf-8")
    specs = load_hub_config(config)
    assert specs["qa"] == HubModelSpec("qa", "someone/better-qa", "abc123")
    assert specs["generation"].model == "openai-community/gpt2"
    monkeypatch.setenv("ATLAS_HUB_CONFIG", str(config))
    assert ModelService("hub").model_name("qa") == "someone/better-qa"


def test_a_broken_or_missing_config_is_an_input_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[qa\nmodel = ", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="not valid TOML"):
        load_hub_config(broken)
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_hub_config(tmp_path / "absent.toml")


def test_hub_profile_runs_all_tasks_from_local_snapshots(tmp_path: Path, snapshots: dict[str, Path]) -> None:
    config = _write_config(tmp_path / "local.toml", {key: str(path) for key, path in snapshots.items()})
    service = ModelService("hub", hub_config=str(config))
    generated = service.generate("The quick brown fox", max_new_tokens=3, min_new_tokens=3)
    reference = ModelService("tiny").generate("The quick brown fox", max_new_tokens=3, min_new_tokens=3)
    assert generated.prediction == reference.prediction  # same weights, loaded from safetensors
    assert generated.model_name == str(snapshots["generation"])
    assert service.answer("Feynman worked at Caltech.", "Where?").architecture == "encoder"
    assert service.classify("Great film!").prediction["label"] in ("positive", "negative")
    translated = service.translate("机器学习正在改变世界。")
    assert translated.model_name == str(snapshots["translation.zh-en"])
    loaded = service.backend.model("generation")
    assert loaded.model.dtype == torch.float32 and loaded.model.config._attn_implementation == "sdpa"


def test_an_uncached_model_offline_names_the_model_the_reason_and_the_fix(
    tmp_path: Path, snapshots: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    entries = {key: str(path) for key, path in snapshots.items()}
    entries["generation"] = "nobody-here/not-a-cached-model"
    service = ModelService("hub", hub_config=str(_write_config(tmp_path / "offline.toml", entries)))
    with pytest.raises(ModelLoadError) as caught:
        service.generate("Hello")
    message = str(caught.value)
    assert "nobody-here/not-a-cached-model" in message
    assert "not in the local Hugging Face cache" in message
    assert "python -m service.models.download" in message and "embedded" in message
    assert service.classify("Still works.").task == "sentiment"  # the other tasks keep working


def test_pickled_weights_are_refused(tmp_path: Path, snapshots: dict[str, Path]) -> None:
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    for item in snapshots["sentiment"].iterdir():
        if not item.name.endswith(".safetensors"):
            (pickled / item.name).write_bytes(item.read_bytes())
    torch.save(load_tiny("sentiment").model.state_dict(), pickled / "pytorch_model.bin")
    entries = {"sentiment": str(pickled)}
    service = ModelService("hub", hub_config=str(_write_config(tmp_path / "pickled.toml", entries)))
    with pytest.raises(ModelLoadError, match="safetensors"):
        service.classify("Nice.")


def test_download_fetches_safetensors_only_and_reports_each_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    requests: list[dict] = []

    def fake_snapshot_download(repo_id: str, revision: str | None, allow_patterns: list[str]) -> str:
        requests.append({"repo_id": repo_id, "revision": revision, "allow_patterns": allow_patterns})
        folder = tmp_path / repo_id.replace("/", "--") / (revision or "main")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.safetensors").write_bytes(b"0" * 1000)
        return str(folder)

    assert download_main([], snapshot_download=fake_snapshot_download) == 0
    output = capsys.readouterr().out
    assert len(requests) == len(HUB_KEYS)
    assert {request["repo_id"] for request in requests} >= {"openai-community/gpt2", "Helsinki-NLP/opus-mt-zh-en"}
    for request in requests:
        assert "*.safetensors" in request["allow_patterns"]
        assert not any(pattern.endswith((".bin", ".pt", ".h5", ".msgpack")) for pattern in request["allow_patterns"])
    assert output.count("done:") == len(HUB_KEYS) and "works offline" in output


def test_download_reports_failures_and_exits_nonzero(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    def offline(repo_id: str, revision: str | None, allow_patterns: list[str]) -> str:
        raise OSError("network is unreachable")

    assert download_main([], snapshot_download=offline) == 1
    output = capsys.readouterr().out
    assert output.count("FAILED") == len(HUB_KEYS) and "network is unreachable" in output


def test_download_refuses_a_revision_without_safetensors(tmp_path: Path) -> None:
    def pickled_only(repo_id: str, revision: str | None, allow_patterns: list[str]) -> str:
        return str(tmp_path)  # nothing matched: the revision has no safetensors

    with pytest.raises(RuntimeError, match="no .safetensors"):
        download_model(HubModelSpec("qa", "someone/old-model", "main"), pickled_only)
