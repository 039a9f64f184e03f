"""The recipes ship with a wheel: ``recipes_dir`` finds them in a checkout or where a wheel
put them (``<prefix>/share/lightning-gru/recipes``)."""

from __future__ import annotations

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


def install_recipes(folder: Path) -> Path:
    """A copy of the recipes in ``folder``, as far as ``recipes_dir`` looks at it."""
    folder.mkdir(parents=True)
    (folder / "debug.yaml").write_text("trainer: {}\n")
    return folder


def test_a_checkout_uses_its_own_recipes(tmp_path, monkeypatch):
    # an installed copy as well: the checkout's recipes win
    install_recipes(tmp_path / "share" / "lightning-gru" / "recipes")
    monkeypatch.setattr(sysconfig, "get_path", lambda name, scheme=None: str(tmp_path))
    assert recipes.recipes_dir() == REPO / "recipes"


def test_a_package_linked_from_a_checkout_uses_the_checkouts_recipes(tmp_path, monkeypatch):
    checkout = tmp_path / "checkout"
    install_recipes(checkout / "recipes")
    (checkout / "lightning_gru").mkdir()
    (tmp_path / "site").mkdir()
    # the package folder linked into site-packages: the checkout is where the link points
    (tmp_path / "site" / "lightning_gru").symlink_to(checkout / "lightning_gru")
    monkeypatch.setattr(recipes, "__file__", str(tmp_path / "site" / "lightning_gru" / "x.py"))
    assert recipes.recipes_dir() == checkout / "recipes"


def test_an_installed_package_uses_the_copy_under_its_prefix(tmp_path, monkeypatch):
    monkeypatch.setattr(recipes, "__file__", str(tmp_path / "site" / "lightning_gru" / "x.py"))
    (tmp_path / "site" / "recipes").mkdir(parents=True)  # another package's: no debug.yaml
    prefix = tmp_path / "prefix"
    monkeypatch.setattr(sysconfig, "get_path", lambda name, scheme=None: str(prefix))
    with pytest.raises(FileNotFoundError, match="recipes are not installed .*prefix") as error:
        recipes.recipes_dir()
    assert str(tmp_path / "site" / "recipes") in str(error.value)
    installed = install_recipes(prefix / "share" / "lightning-gru" / "recipes")
    assert recipes.recipes_dir() == installed


@pytest.mark.parametrize(
    ("installs", "found"),
    [(["env"], "env"), (["user"], "user"), (["env", "user"], "env")],
    ids=["environment", "user", "both"],
)
def test_the_environments_copy_else_the_users(tmp_path, monkeypatch, installs, found):
    """``pip install`` puts the recipes under the data path of the environment's scheme,
    ``pip install --user`` under that of the user's scheme."""
    monkeypatch.setattr(recipes, "__file__", str(tmp_path / "site" / "lightning_gru" / "x.py"))
    prefixes = {
        sysconfig.get_default_scheme(): tmp_path / "env",
        sysconfig.get_preferred_scheme("user"): tmp_path / "user",
    }
    monkeypatch.setattr(
        sysconfig, "get_path", lambda name, scheme: str(prefixes[scheme] / name)
    )  # the data path, not that of the modules (purelib) or of the scripts
    for name in installs:
        install_recipes(tmp_path / name / "data" / "share" / "lightning-gru" / "recipes")
    expected = tmp_path / found / "data" / "share" / "lightning-gru" / "recipes"
    assert recipes.recipes_dir() == expected


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
    # the build's records beside its kernel (lightning_gru/_ext/__init__.py reads them)
    assert {"lightning_gru/_ext/_built_from.py", "lightning_gru/_ext/_native_cpu.py"} <= set(names)
    assert not [n for n in names if n.endswith(".partial")]
