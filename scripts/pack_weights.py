#!/usr/bin/env python
"""Pack trained weights for release: float16 safetensors + JSON config with the new sha256,
then print the registry entry (sizes and sha256 of every file).

    python scripts/pack_weights.py SRC_STEM DEST_DIR [--card card.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    from safetensors.torch import load_file, save_file

    from xgenfill.hashing import sha256_file

    p = argparse.ArgumentParser()
    p.add_argument("src", type=Path)
    p.add_argument("dest", type=Path)
    args = p.parse_args()
    src = args.src.with_suffix("") if args.src.suffix else args.src
    cfg = json.loads(src.with_suffix(".json").read_text())
    state = load_file(str(src.with_suffix(".safetensors")))
    half = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    args.dest.mkdir(parents=True, exist_ok=True)
    out = args.dest / src.name
    save_file(half, str(out.with_suffix(".safetensors")), metadata={"kind": cfg["kind"],
                                                                    "dtype": "float16"})
    cfg["weights_sha256"] = sha256_file(out.with_suffix(".safetensors"))
    cfg["weights_dtype"] = "float16"
    out.with_suffix(".json").write_text(json.dumps(cfg, indent=1))
    files = {f.name: sha256_file(f) for f in (out.with_suffix(".safetensors"),
                                              out.with_suffix(".json"))}
    size = sum(f.stat().st_size for f in (out.with_suffix(".safetensors"),
                                          out.with_suffix(".json")))
    print(json.dumps({"name": src.name, "files": files, "size": size}, indent=1))


if __name__ == "__main__":
    main()
