"""Command line: ``xgenfill inpaint IN.nc OUT.nc --var chl --model dineof`` and friends.

Thin wrappers over the Python API; bad input exits non-zero with a one-line reason.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import Sequence

from ._version import __version__


def _option(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    for cast in (int, float):
        try:
            return key, cast(value)
        except ValueError:
            pass
    return key, {"true": True, "false": False}.get(value.lower(), value)


def _fill_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None,
                   help="model name (auto, diffusion, vae, dineof, linear_time, climatology, "
                        "linear_space, anomaly), a registered pretrained name (xgenfill models "
                        "list) or a weights path (default: auto, the pretrained diffusion "
                        "model of the variable's family combined with the classical fills by "
                        "weights checked on the input's own observed pixels; with "
                        "--fractions: anomaly, as no pretrained model knows fractions)")
    p.add_argument("--n-samples", type=int, default=1,
                   help="ensemble size of generative models; >1 adds the members' spread as "
                        "<var>_uncertainty (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the generative sampler (default: %(default)s)")
    p.add_argument("--transform", default="auto", choices=["auto", "log10", "logit", "identity"],
                   help="transform of the values: auto = log10 for chlorophyll, logit for "
                        "fractions, standardisation otherwise (default: %(default)s)")
    p.add_argument("--png", type=Path, help="also write a quick-look PNG of one time step")
    p.add_argument("--option", "-o", type=_option, action="append", default=[],
                   metavar="KEY=VALUE", help="model option, e.g. -o nev=20 (repeatable)")


def _write(ds, original, out: Path, png: Path | None) -> None:
    if any(v.chunks for v in ds.data_vars.values()):  # lazy: the fill runs while writing
        from dask.diagnostics import ProgressBar

        with ProgressBar(out=sys.stderr):
            ds.to_netcdf(out)
    else:
        ds.to_netcdf(out)
    print(f"wrote {out}")
    if png is not None:
        from .plot import plot_fill

        plot_fill(original, ds, png)
        print(f"wrote {png}")


def _mapping(text: str, what: str, cast=str) -> dict:
    """``"a=1,b=2"`` -> ``{"a": 1, "b": 2}``."""
    out = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"{what}: expected NAME=VALUE[,NAME=VALUE...], "
                                             f"got {text!r}")
        try:
            out[key.strip()] = cast(value.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what}: {value!r} is not a {cast.__name__}")
    return out


def _chunks(text: str) -> dict:
    return _mapping(text, "--chunks", int)


def _dims(text: str) -> dict:
    out = _mapping(text, "--dims")
    bad = sorted(set(out) - {"T", "Y", "X"})
    if bad:
        raise argparse.ArgumentTypeError(f"--dims: keys are T, Y and X, got {bad}")
    return out


def _mask_spec(text: str) -> tuple[Path, str]:
    path, sep, var = text.rpartition(":")
    if not sep or not path or not var:
        raise argparse.ArgumentTypeError(f"--mask: expected FILE:VAR, got {text!r}")
    return Path(path), var


def _read_mask(path: Path, var: str):
    import xarray as xr

    from .errors import GenfillError

    if not path.exists():
        raise GenfillError(f"--mask file {path} does not exist")
    with xr.open_dataset(path) as mds:
        if var not in mds.variables:
            raise GenfillError(f"--mask variable {var!r} not in {path} (has "
                               f"{list(mds.data_vars)})")
        mask = mds[var].load()
    if mask.dtype != bool:  # 1 / 0 (or any non-zero) = sea, as in --mask-var
        mask = mask.fillna(0) != 0
    return mask


def _check_output(path: Path, source: Path | None = None) -> None:
    """Fail before the fill, not after it, when the result cannot be written."""
    from .errors import GenfillError

    parent = path.resolve().parent
    if not parent.is_dir():
        raise GenfillError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise GenfillError(f"cannot write {path}: folder {parent} is not writable")
    if source is not None and path.exists() and path.resolve() == source.resolve():
        raise GenfillError(f"output {path} is the input file: write to another path")


def _inpaint(args: argparse.Namespace) -> None:
    import xarray as xr

    from .api import inpaint_dataset
    from .errors import GenfillError
    from .fractions import inpaint_fractions

    if not args.input.exists():
        raise GenfillError(f"input file {args.input} does not exist")
    _check_output(args.output, args.input)
    if args.png is not None:
        _check_output(args.png, args.input)
    if args.chunks:  # lazy: read, fill and write chunk by chunk (files larger than memory)
        ds = xr.open_dataset(args.input, chunks=args.chunks)
    else:
        with xr.open_dataset(args.input) as ds:
            ds = ds.load()
    for var in args.var:
        if var not in ds.data_vars:
            raise GenfillError(f"variable {var!r} not in {args.input} (has {list(ds.data_vars)})")
    mask = None
    if args.mask_var and args.mask:
        raise GenfillError("give --mask FILE:VAR or --mask-var VAR, not both")
    if args.mask_var:
        if args.mask_var not in ds:
            raise GenfillError(f"--mask-var {args.mask_var!r} is not a variable of {args.input} "
                               f"(has {list(ds.data_vars)})")
        mask = ds[args.mask_var]
    elif args.mask:
        mask = _read_mask(*args.mask)
    model = args.model or ("anomaly" if args.fractions else "auto")
    common = dict(model=model, n_samples=args.n_samples, seed=args.seed, mask=mask,
                  dims=args.dims, progress=True, **dict(args.option))
    if args.max_gap is not None:
        if args.fractions:
            raise GenfillError("--max-gap is not available with --fractions yet")
        common["max_gap"] = args.max_gap
    if args.fractions:
        if args.transform != "auto":
            raise GenfillError("--fractions fills centred log-ratios: leave --transform alone")
        out = inpaint_fractions(ds, args.var, **common)
    else:  # the input's other variables and global attributes are kept
        out = inpaint_dataset(ds, args.var, transform=args.transform, **common)
    _write(out, ds[args.var[0]], args.output, args.png)


def _demo(args: argparse.Namespace) -> None:
    _check_output(args.output)
    if args.png is not None:
        _check_output(args.png)
    from .api import inpaint
    from .post import FILLS
    from .samples import open_sample

    ds = open_sample("phytofit")
    args.model = args.model or "auto"
    out = inpaint(ds.chl, model=args.model, n_samples=args.n_samples, seed=args.seed,
                  return_dataset=True, progress=True, **dict(args.option))
    flags = out.chl_filled_flag
    print(f"filled {int(flags.isin(FILLS).sum())} gap pixels of the bundled MODIS chl sample "
          f"({dict(ds.chl.sizes)}) with model={args.model!r}")
    _write(out, ds.chl, args.output, args.png)


def _models_list(args: argparse.Namespace) -> None:
    from .zoo import list_models

    rows = list_models()
    print(f"{'name':<20} {'kind':<10} {'var':<5} {'size MB':>8}  {'available':<10} description")
    for r in rows:
        where = "embedded" if r["embedded"] else ("cached" if r["cached"] else "download")
        print(f"{r['name']:<20} {r['kind']:<10} {r['variable']:<5} {r['size_mb']:>8.2f}  "
              f"{where:<10} {r['description']}")


def _models_download(args: argparse.Namespace) -> None:
    from .zoo import download, entries

    if not args.names and not args.all:
        raise SystemExit("xgenfill: error: name a model or pass --all")
    names = None if args.all else args.names
    for name in names or [n for n, e in entries().items() if not e.embedded]:
        path = download([name], progress=not args.quiet)[0]
        print(f"{name}: {path.parent}")


def _models_cache_dir(args: argparse.Namespace) -> None:
    from .zoo import cache_dir

    print(cache_dir())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xgenfill", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"xgenfill {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("inpaint", help="fill the gaps of variables of a NetCDF file")
    p.add_argument("input", type=Path, help="NetCDF file with the gappy variable(s)")
    p.add_argument("output", type=Path,
                   help="NetCDF file to write: each variable filled, its <var>_filled_flag and "
                        "<var>_uncertainty")
    p.add_argument("--var", required=True, nargs="+", help="variable(s) to fill")
    p.add_argument("--fractions", action="store_true",
                   help="the variables are fractions that sum to 1 (e.g. pico nano micro): "
                        "fill them together so that every filled pixel sums to 1")
    p.add_argument("--mask-var", metavar="VAR",
                   help="land/sea mask variable in the same file (non-zero or True = sea)")
    p.add_argument("--mask", type=_mask_spec, metavar="FILE:VAR",
                   help="land/sea mask from another file on the same grid (non-zero or True = "
                        "sea); needed for single images, where land cannot be told from clouds")
    p.add_argument("--chunks", type=_chunks, metavar="DIM=N,...",
                   help="process lazily with dask in chunks of these sizes, e.g. "
                        "time=30,lat=512,lon=512, for files larger than memory")
    p.add_argument("--max-gap", type=int, metavar="N",
                   help="fill only gaps of at most N consecutive time steps at a pixel; longer "
                        "ones stay empty (status not_filled)")
    p.add_argument("--dims", type=_dims, metavar="T=NAME,Y=NAME,X=NAME",
                   help="axis names when the metadata do not say, e.g. T=date,Y=row,X=col")
    _fill_args(p)
    p.set_defaults(func=_inpaint)

    p = sub.add_parser("demo", help="fill the bundled real MODIS chl sample (no network)")
    p.add_argument("output", type=Path, nargs="?", default=Path("xgenfill_demo.nc"),
                   help="NetCDF file to write (default: %(default)s)")
    _fill_args(p)
    p.set_defaults(func=_demo)

    models = sub.add_parser("models", help="pretrained models: list, download, cache-dir")
    msub = models.add_subparsers(dest="models_command", required=True)
    m = msub.add_parser("list", help="registered models, their size and availability")
    m.set_defaults(func=_models_list)
    m = msub.add_parser("download", help="fetch models into the cache (e.g. on a login node)")
    m.add_argument("names", nargs="*", help="registered model names (xgenfill models list)")
    m.add_argument("--all", action="store_true", help="every downloadable model")
    m.add_argument("--quiet", action="store_true", help="no progress bar")
    m.set_defaults(func=_models_download)
    m = msub.add_parser("cache-dir", help="print the cache folder (XGENFILL_CACHE_DIR)")
    m.set_defaults(func=_models_cache_dir)

    p = sub.add_parser("show-versions", help="print versions of xgenfill and its dependencies")
    p.set_defaults(func=lambda args: __import__("xgenfill").show_versions())
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # one clean line, like the errors: the Python location of the warning means nothing here
    text = " ".join(str(message).split())
    print(f"xgenfill: warning: {text}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .errors import GenfillError

    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            args.func(args)
        except (GenfillError, OSError, KeyError) as err:
            msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            msg = msg.replace("pass mask=", "pass --mask FILE:VAR (or --mask-var VAR)")
            print(f"xgenfill: error: {msg}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
