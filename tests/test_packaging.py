"""Packaging metadata a packager relies on: pyproject, the conda-forge recipe and the citation
agree; the classifiers exist; the sdist carries what its own tests need."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import xgenfill

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
yaml = pytest.importorskip("yaml")  # PyYAML, a dependency of dask

# PyPI name -> conda-forge name, where they differ
CONDA_NAMES = {"dask": "dask-core", "cf-xarray": "cf_xarray", "netCDF4": "netcdf4",
               "torch": "pytorch", "matplotlib": "matplotlib-base"}


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


@pytest.fixture(scope="module")
def recipe() -> dict:
    return yaml.safe_load((ROOT / "recipe" / "recipe.yaml").read_text())


def _requirement(spec: str) -> tuple[str, str]:
    """'dask[array]>=2023.6' -> ('dask', '>=2023.6')."""
    m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(.*)", spec.strip())
    return m.group(1), m.group(3).replace(" ", "")


def _conda(specs: list[str]) -> dict[str, str]:
    out = {}
    for spec in specs:
        name, _, version = spec.partition(" ")
        out[name] = version.replace(" ", "")
    return out


def test_recipe_is_conda_forge_v1_and_matches_pyproject(pyproject, recipe):
    assert recipe["schema_version"] == 1
    ctx = recipe["context"]
    assert ctx["version"] == xgenfill.__version__
    assert pyproject["requires-python"] == f">={ctx['python_min']}"
    run = _conda(recipe["requirements"]["run"])
    assert run.pop("python") == ">=${{python_min}}"
    wanted = {CONDA_NAMES.get(n, n): v for n, v in map(_requirement, pyproject["dependencies"])}
    assert run == wanted
    extras = pyproject["optional-dependencies"]
    constraints = _conda(recipe["requirements"]["run_constraints"])
    for extra in ("plot", "distributed", "landmask"):
        for name, version in map(_requirement, extras[extra]):
            assert constraints[CONDA_NAMES.get(name, name)] == version
    build_req = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    host = _conda(recipe["requirements"]["host"])
    for name, version in map(_requirement, build_req):
        assert host[name] == version
    entry = f"xgenfill = {pyproject['scripts']['xgenfill']}"
    assert recipe["build"]["python"]["entry_points"] == [entry]


def test_recipe_tests_oldest_and_latest_python_and_names_every_licence(pyproject, recipe):
    versions = [t["python"]["python_version"] for t in recipe["tests"] if "python" in t]
    assert versions == [["${{ python_min }}.*", "*"]]
    about = recipe["about"]
    assert about["license"] == pyproject["license"] == "MIT"
    assert about["license_file"] == pyproject["license-files"]
    for path in pyproject["license-files"]:
        assert (ROOT / path).is_file(), path
    assert about["repository"] == pyproject["urls"]["Repository"]
    assert about["documentation"] == pyproject["urls"]["Documentation"]


def test_classifiers_exist_and_cover_the_supported_pythons(pyproject):
    trove = pytest.importorskip("trove_classifiers")
    unknown = [c for c in pyproject["classifiers"] if c not in trove.classifiers]
    assert not unknown
    assert not [c for c in pyproject["classifiers"] if c.startswith("License ::")], \
        "licence classifiers are deprecated: the SPDX license field says it"
    low = int(pyproject["requires-python"].split(".")[1])
    for minor in range(low, 14):
        assert f"Programming Language :: Python :: 3.{minor}" in pyproject["classifiers"]
    assert "Typing :: Typed" in pyproject["classifiers"]
    assert (ROOT / "xgenfill" / "py.typed").exists()


def test_citation_matches_the_package(pyproject):
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    assert str(cff["version"]) == xgenfill.__version__
    assert cff["license"] == pyproject["license"]
    assert cff["repository-code"] == pyproject["urls"]["Repository"]
    assert len(cff["references"]) >= 5  # the methods the models follow
    assert (ROOT / "CHANGELOG.md").read_text().startswith("# Changelog")


def _source_files() -> set[str]:
    """What the sdist must carry for its tests: the package, the tests, notices."""
    skip = ("__pycache__", ".pyc", ".egg-info")
    out = set()
    for top in ("xgenfill", "tests", "examples", "docs/model_cards"):
        for p in (ROOT / top).rglob("*"):
            if p.is_file() and not any(s in str(p) for s in skip):
                out.add(str(p.relative_to(ROOT)))
    return out | {"LICENSE", "README.md", "CHANGELOG.md", "CITATION.cff", "pyproject.toml",
                  "docs/conf.py", "docs/index.md", "recipe/recipe.yaml"}


def test_sdist_carries_its_tests_and_notices(tmp_path):
    pytest.importorskip("build")
    # from a copy without *.egg-info: setuptools adds the files an old SOURCES.txt lists, so a
    # tree that once built a complete sdist would pass whatever MANIFEST.in says
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "*.egg-info", "__pycache__", "_build", "generated", "auto_examples",
        "build", "dist", ".pytest_cache"))
    out = subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation",
                          "--outdir", str(tmp_path), str(src)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    (sdist,) = tmp_path.glob("xgenfill-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    missing = sorted(_source_files() - names)
    assert not missing, f"not in the sdist: {missing}"
    built = [n for n in names if n.startswith(("docs/_build", "docs/generated",
                                               "docs/auto_examples"))]
    assert not built, built[:5]


def test_release_script_fills_version_sha256_and_maintainers(tmp_path):
    import hashlib
    import importlib.util

    spec = importlib.util.spec_from_file_location("release_recipe",
                                                  ROOT / "scripts" / "release_recipe.py")
    if spec is None or not (ROOT / "scripts" / "release_recipe.py").exists():
        pytest.skip("scripts/ is not shipped in the sdist")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sdist = tmp_path / "xgenfill-9.8.7.tar.gz"
    sdist.write_bytes(b"not really a tarball")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text((ROOT / "recipe" / "recipe.yaml").read_text())
    sha = mod.release(sdist, ["alice", "bob"], recipe)
    out = yaml.safe_load(recipe.read_text())
    assert sha == hashlib.sha256(b"not really a tarball").hexdigest()
    assert out["source"]["sha256"] == sha and out["context"]["version"] == "9.8.7"
    assert out["extra"]["recipe-maintainers"] == ["alice", "bob"]
    assert out["schema_version"] == 1 and out["tests"] == yaml.safe_load(
        (ROOT / "recipe" / "recipe.yaml").read_text())["tests"]
