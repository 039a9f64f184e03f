"""The recipes ship with a wheel: ``recipes_dir`` finds them in a checkout or where a wheel
put them (``<prefix>/share/lightning-gru/recipes``)."""

from __future__ import annotations

import doctest
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from lightning_gru import recipes

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(
    p.relative_to(REPO).as_posix()
    for p in (REPO / "recipes").rglob("*")
    if p.is_file() and p.suffix in (".yaml", ".md", ".py")
)


def test_a_checkout_uses_its_own_recipes():
    assert recipes.recipes_dir() == REPO / "recipes"


def test_an_installed_package_uses_the_copy_under_its_prefix(tmp_path, monkeypatch):
    monkeypatch.setattr(recipes, "__file__", str(tmp_path / "site" / "lightning_gru" / "x.py"))
    prefix = tmp_path / "prefix"
    monkeypatch.setattr(sysconfig, "get_path", lambda name, scheme=None: str(prefix))
    with pytest.raises(FileNotFoundError, match="recipes are not installed .*prefix"):
        recipes.recipes_dir()
    installed = prefix / "share" / "lightning-gru" / "recipes"
    installed.mkdir(parents=True)
    (installed / "debug.yaml").write_text("trainer: {}\n")
    assert recipes.recipes_dir() == installed


@pytest.mark.slow
def test_the_wheel_carries_every_recipe(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(tmp_path)],
        check=True, cwd=REPO,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("lightning_gru-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    data = "lightning_gru-{}.data/data/share/lightning-gru/".format(wheel.name.split("-")[1])
    assert sorted(n[len(data) :] for n in names if n.startswith(data)) == SHIPPED
    assert "recipes/forecasting/sine-gru.yaml" in SHIPPED


def test_doctest():
    result = doctest.testmod(recipes)
    assert result.attempted > 0 and result.failed == 0
