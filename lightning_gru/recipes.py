"""Where the YAML recipes are: in a checkout, or where a wheel installed them."""

import sysconfig
from pathlib import Path

__all__ = ["recipes_dir"]

_INSTALLED = Path("share", "lightning-gru", "recipes")  # under a data prefix (setup.py)


def recipes_dir() -> Path:
    """The folder of the recipes: ``recipes/`` of the checkout this package runs from (an
    editable install), else the copy a wheel installs under ``<prefix>/share/lightning-gru``
    (the environment's prefix, or the user's for ``pip install --user``).

    >>> (recipes_dir() / "forecasting" / "sine-gru.yaml").is_file()
    True
    """
    candidates = [Path(__file__).resolve().parents[1] / "recipes"]
    for scheme in (sysconfig.get_default_scheme(), sysconfig.get_preferred_scheme("user")):
        candidates.append(Path(sysconfig.get_path("data", scheme)) / _INSTALLED)
    for folder in candidates:
        if (folder / "debug.yaml").is_file():
            return folder
    searched = ", ".join(str(folder) for folder in candidates)
    raise FileNotFoundError(f"the lightning-gru recipes are not installed (searched {searched})")
