"""Every shipped recipe parses with the ``lightning-gru`` command, comments every key, keeps the
published settings of its experiment and appears in ``recipes/README.md``."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
import yaml

from lightning_gru.cli import LightningGRUCLI

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
OVERLAYS = sorted(RECIPES.glob("*/local-data.yaml"))
RECIPE_FILES = sorted(p for p in RECIPES.rglob("*.yaml") if p not in OVERLAYS)

# LightningCLI(args=...) inside pytest: it warns that sys.argv holds pytest's arguments
pytestmark = pytest.mark.filterwarnings("ignore:LightningCLI's args parameter")


def ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(RECIPES)) for p in paths]


def print_config(*configs: Path, subcommand: str = "fit") -> dict:
    """The resolved config of ``lightning-gru <subcommand> --config ... --print_config``."""
    args = [subcommand]
    for config in configs:
        args += ["--config", str(config)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        LightningGRUCLI(args=[*args, "--print_config"])
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(out.getvalue())


def test_recipes_are_found():
    assert len(RECIPE_FILES) == 13  # 4 sentiment, 4 language model, 4 forecasting, debug
    assert {p.parent.name for p in OVERLAYS} == {"sentiment", "language_model"}


@pytest.mark.parametrize("recipe", RECIPE_FILES, ids=ids(RECIPE_FILES))
def test_recipe_parses(recipe):
    config = print_config(recipe)
    assert config["model"]["class_path"].startswith("lightning_gru.models.")
    assert config["data"]["class_path"].startswith("lightning_gru.data.")
    run_dir = Path(config["checkpoint"]["dirpath"]).parent
    assert Path(config["trainer"]["logger"]["init_args"]["save_dir"]) == run_dir
    if recipe.name != "debug.yaml":
        logger = config["trainer"]["logger"]
        assert logger["class_path"] == "lightning.pytorch.loggers.WandbLogger"
        assert logger["init_args"]["project"] == "lightning-gru"
        assert logger["init_args"]["name"] == recipe.stem
        assert run_dir == Path("runs") / recipe.parent.name / recipe.stem


@pytest.mark.parametrize("overlay", OVERLAYS, ids=ids(OVERLAYS))
def test_overlay_composes_with_every_recipe_of_its_task(overlay):
    for recipe in sorted(overlay.parent.glob("*.yaml")):
        if recipe != overlay:
            data = print_config(recipe, overlay)["data"]["init_args"]
            assert (data.get("data_dir") or data.get("data_file")).startswith("../shared/data/")


@pytest.mark.parametrize("recipe", RECIPE_FILES + OVERLAYS, ids=ids(RECIPE_FILES + OVERLAYS))
def test_every_key_has_a_comment(recipe):
    """Each ``key:`` line carries a ``#`` comment, or the line above it is a comment; list items
    belong to their key."""
    previous = ""
    for number, line in enumerate(recipe.read_text().splitlines(), start=1):
        stripped = line.strip()
        if re.match(r"[\w.-]+:", stripped):
            assert "#" in line or previous.startswith("#"), f"{recipe.name}:{number}: {line!r}"
        if stripped:
            previous = stripped


def load(relative: str) -> dict:
    return yaml.safe_load((RECIPES / relative).read_text())


@pytest.mark.parametrize("name", ["gru", "gru-reset-before", "lstm", "rnn"])
def test_language_model_recipes_keep_d2l_settings(name):
    config = load(f"language_model/timemachine-{name}.yaml")
    trainer, model, data = (
        config["trainer"],
        config["model"]["init_args"],
        config["data"]["init_args"],
    )
    assert (trainer["max_epochs"], trainer["gradient_clip_val"]) == (500, 1.0)
    assert (data["batch_size"], data["num_steps"], data["max_tokens"]) == (32, 35, 10000)
    assert model["hidden_size"] == 256 and model["embedding_dim"] is None
    assert model["optimizer"] == {"class_path": "torch.optim.SGD", "init_args": {"lr": 1.0}}
    assert model["encoder"] == name.split("-")[0]
    assert model.get("reset_after", True) is (name != "gru-reset-before")


def test_original_forecasting_recipe_keeps_the_original_settings():
    config = load("forecasting/sine-gru-original.yaml")
    model, data = config["model"]["init_args"], config["data"]["init_args"]
    assert config["trainer"]["max_epochs"] == 150
    assert model["optimizer"] == {"class_path": "torch.optim.Adam", "init_args": {"lr": 5.0e-4}}
    assert (data["seq_len"], data["sliding"], data["batch_size"]) == (20, False, 38)
    assert (data["num_points"], data["noise_std"], model["hidden_size"]) == (1000, 0.1, 16)


@pytest.mark.parametrize("name", ["gru", "lstm", "mlp"])
def test_tuned_forecasting_recipes_differ_only_in_the_model(name):
    config = load(f"forecasting/sine-{name}.yaml")
    gru = load("forecasting/sine-gru.yaml")
    model = config["model"]["init_args"]
    assert config["data"] == gru["data"] and config["trainer"]["max_epochs"] == 100
    assert model["optimizer"] == {"class_path": "torch.optim.Adam", "init_args": {"lr": 5.0e-3}}
    assert config["checkpoint"]["monitor"] == "val_rollout_mse"
    assert model["encoder"] == name
    if name == "mlp":
        assert model["mlp_hidden_sizes"] == [32, 16]
    else:
        assert model["hidden_size"] == 16


def test_readme_lists_every_recipe_without_invented_numbers():
    readme = (RECIPES / "README.md").read_text()
    assert "lightning-gru fit --config" in readme
    assert "lightning run" in readme  # explains why recipes run through LightningCLI
    for recipe in RECIPE_FILES:
        relative = str(recipe.relative_to(RECIPES))
        assert f"`{relative}`" in readme, relative
    results_section = readme.split("## Results", 1)[1]
    table = [line for line in results_section.splitlines() if line.startswith("| `")]
    assert len(table) == len(RECIPE_FILES)
    results = [line for line in table if "not yet run" not in line]
    for row in results:  # a filled row names the command's machine, its wall time and commit
        assert re.search(r"\b[0-9a-f]{7,40}\b", row), row
