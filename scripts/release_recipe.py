"""Fill the release-time fields of the conda-forge recipe from the sdist uploaded to PyPI.

    python scripts/release_recipe.py dist/xgenfill-0.1.0.tar.gz --maintainer GITHUB_HANDLE ...

Sets ``context.version`` from the file name, ``source.sha256`` to the file's sha256 (it must be
the very file on PyPI: conda-forge downloads that one), and the recipe maintainers. Run it
after ``twine upload``, then submit ``recipe/recipe.yaml`` to conda-forge/staged-recipes.
"""

from __future__ import annotations

import argparse
import hashlib
import re
from pathlib import Path

RECIPE = Path(__file__).resolve().parents[1] / "recipe" / "recipe.yaml"


def release(sdist: Path, maintainers: list[str], recipe: Path = RECIPE) -> str:
    """Rewrite ``recipe`` for the release of ``sdist``; returns the sha256."""
    m = re.fullmatch(r"xgenfill-(.+)\.tar\.gz", sdist.name)
    if not m:
        raise SystemExit(f"{sdist.name} is not an xgenfill sdist (xgenfill-X.Y.Z.tar.gz)")
    if not maintainers:
        raise SystemExit("name at least one --maintainer (a GitHub handle)")
    sha = hashlib.sha256(sdist.read_bytes()).hexdigest()
    text = recipe.read_text()
    text = re.sub(r'(?m)^(  version: )"[^"]*"', rf'\g<1>"{m.group(1)}"', text, count=1)
    text = re.sub(r"(?m)^(  sha256: )\S+", rf"\g<1>{sha}", text, count=1)
    head, sep, _ = text.partition("  recipe-maintainers:\n")
    comments = [line for line in _.splitlines() if line.lstrip().startswith("#")]
    text = head + sep + "".join(f"{c}\n" for c in comments) + "".join(
        f"    - {name}\n" for name in maintainers)
    recipe.write_text(text)
    return sha


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sdist", type=Path, help="the sdist uploaded to PyPI")
    parser.add_argument("--maintainer", action="append", default=[],
                        help="GitHub handle of a feedstock maintainer (repeatable)")
    parser.add_argument("--recipe", type=Path, default=RECIPE, help="recipe to rewrite")
    args = parser.parse_args()
    print(release(args.sdist, args.maintainer, args.recipe))


if __name__ == "__main__":
    main()
