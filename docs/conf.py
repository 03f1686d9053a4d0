"""Sphinx configuration: pydata theme, numpydoc, accessor pages, MyST pages, a gallery run at
build time on the bundled samples (offline, CPU)."""

from __future__ import annotations

import os
import warnings

import sphinx_autosummary_accessors

import xgenfill

project = "xgenfill"
author = "xgenfill developers"
copyright = "2026, xgenfill developers"
version = release = xgenfill.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_autosummary_accessors",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "sphinxarg.ext",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates", sphinx_autosummary_accessors.templates_path]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip", "auto_examples/*.json"]

# no intersphinx: the docs build offline (CI has no network beyond the package registries)
autosummary_generate = True
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# the same checks as tests/test_docstrings.py: every public docstring complete
numpydoc_validation_checks = {"all", "GL01", "GL02", "ES01", "SA04", "RT02"}
numpydoc_validation_exclude = {r"\.__init__$", r"^builtins\.", r"\.with_traceback$",
                               r"\.add_note$", r"Error\.args$", r"Warning\.args$"}

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
# sphinx-argparse's domain has no resolve_any_xref; MyST says so for every link it resolves
suppress_warnings = ["myst.domains"]

html_theme = "pydata_sphinx_theme"
html_title = f"xgenfill {release}"
html_theme_options = {
    "github_url": "https://github.com/xgenfill/xgenfill",
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path: list[str] = []

# Gallery: real bundled data, CPU, offline; figures are made at build time.
os.environ.setdefault("XGENFILL_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "agg")
warnings.filterwarnings("ignore", category=UserWarning,
                        message="Matplotlib is currently using agg")
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "show_memory": False,
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
}
