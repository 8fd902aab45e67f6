#!/usr/bin/env python3
"""Compile ignition/etcdadm.bu (Butane) into ignition/etcdadm.ign (Ignition JSON) without Butane.

    python3 ignition/render.py            # writes etcdadm.ign next to etcdadm.bu
    python3 ignition/render.py --check    # exit 1 (with a diff) when etcdadm.ign is stale
    python3 ignition/render.py [--files-dir DIR] IN.bu [OUT.ign|-]

Butane is not packaged for Debian, so this translates the part of the Butane spec the
shipped config uses (variants flatcar 1.0.0 and fcos 1.4.0, both Ignition 3.3.0):
storage.files (path, mode, overwrite, contents: source | inline | local, verification.hash),
storage.directories, storage.links, systemd.units (name, enabled, mask, contents, dropins).
Anything else is an error rather than silently dropped; use real Butane for it.

The result means the same to Ignition as `butane --pretty --strict` (checked against Butane
0.19.0), with two differences in form: inline and local contents are never gzipped (Butane
gzips them when that is shorter), and keys are sorted.
Needs python3 and python3-yaml.
"""

import argparse
import base64
import difflib
import json
import os
import re
import sys
import urllib.parse

try:
    import yaml
except ImportError:
    sys.exit("render.py: needs PyYAML (Debian: apt-get install python3-yaml)")

HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = {("flatcar", "1.0.0"): "3.3.0", ("fcos", "1.4.0"): "3.3.0"}
HASH = re.compile(r"^(sha256-[0-9a-f]{64}|sha512-[0-9a-f]{128})$")


class Error(Exception):
    pass


def only(obj, where, allowed):
    if not isinstance(obj, dict):
        raise Error(f"{where}: expected a mapping")
    for key in obj:
        if key not in allowed:
            raise Error(f"{where}.{key}: not supported by render.py (use butane)")


def mode(value, where):
    # YAML 1.1 reads `mode: 0644` as octal (420), as Butane does.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0o777:
        raise Error(f"{where}.mode: expected a permission mode such as 0644, got {value!r}")
    return value


def data_url(data):
    # As Butane: URL-escaped (RFC 2396 unreserved characters kept) or base64, the shorter.
    escaped = "," + urllib.parse.quote(data, safe="!*'()")
    b64 = ";base64," + base64.b64encode(data).decode()
    return "data:" + (b64 if len(b64) < len(escaped) else escaped)


def contents(src, where, files_dir):
    only(src, where, {"source", "inline", "local", "verification"})
    given = [k for k in ("source", "inline", "local") if k in src]
    if len(given) > 1:
        raise Error(f"{where}: {' and '.join(given)} are mutually exclusive")
    out = {}
    if "source" in src:
        out["source"] = src["source"]
    elif "inline" in src or "local" in src:
        if "inline" in src:
            data = str(src["inline"]).encode()
        else:
            if files_dir is None:
                raise Error(f"{where}.local: needs --files-dir")
            with open(os.path.join(files_dir, src["local"]), "rb") as f:
                data = f.read()
        out["compression"] = ""  # as Butane: no compression inherited from a parent config
        out["source"] = data_url(data)
    if "verification" in src:
        only(src["verification"], f"{where}.verification", {"hash"})
        h = src["verification"].get("hash")
        if h is not None:
            if not HASH.match(str(h)):
                raise Error(f"{where}.verification.hash: expected sha256-<64 hex> or sha512-<128 hex>")
            out["verification"] = {"hash": h}
    return out


def translate(doc, files_dir=None):
    only(doc, "config", {"variant", "version", "storage", "systemd"})
    key = (doc.get("variant"), str(doc.get("version")))
    if key not in VARIANTS:
        raise Error(f"variant {key[0]!r} version {key[1]!r}: render.py knows {sorted(VARIANTS)}")
    out = {"ignition": {"version": VARIANTS[key]}}
    paths = set()

    def node(entry, where, allowed):
        only(entry, where, allowed)
        path = entry.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise Error(f"{where}.path: expected an absolute path")
        if path in paths:
            raise Error(f"{where}.path: {path} is given twice")
        paths.add(path)
        n = {"path": path}
        if "overwrite" in entry:
            n["overwrite"] = bool(entry["overwrite"])
        if "mode" in entry:
            n["mode"] = mode(entry["mode"], where)
        return n

    storage = doc.get("storage") or {}
    only(storage, "storage", {"files", "directories", "links"})
    st = {}
    for i, f in enumerate(storage.get("files") or []):
        where = f"storage.files[{i}]"
        n = node(f, where, {"path", "mode", "overwrite", "contents"})
        if "contents" in f:
            n["contents"] = contents(f["contents"], f"{where}.contents", files_dir)
        st.setdefault("files", []).append(n)
    for i, d in enumerate(storage.get("directories") or []):
        st.setdefault("directories", []).append(node(d, f"storage.directories[{i}]", {"path", "mode", "overwrite"}))
    for i, ln in enumerate(storage.get("links") or []):
        where = f"storage.links[{i}]"
        n = node(ln, where, {"path", "target", "hard", "overwrite"})
        n.pop("mode", None)
        n["target"] = ln["target"]
        if "hard" in ln:
            n["hard"] = bool(ln["hard"])
        st.setdefault("links", []).append(n)
    if st:
        out["storage"] = st

    systemd = doc.get("systemd") or {}
    only(systemd, "systemd", {"units"})
    units, names = [], set()
    for i, u in enumerate(systemd.get("units") or []):
        where = f"systemd.units[{i}]"
        only(u, where, {"name", "enabled", "mask", "contents", "dropins"})
        name = u.get("name")
        if not isinstance(name, str) or "." not in name or name in names:
            raise Error(f"{where}.name: expected a unique unit name such as x.service")
        names.add(name)
        n = {"name": name}
        for k in ("enabled", "mask"):
            if k in u:
                n[k] = bool(u[k])
        if "contents" in u:
            n["contents"] = str(u["contents"])
        for j, d in enumerate(u.get("dropins") or []):
            only(d, f"{where}.dropins[{j}]", {"name", "contents"})
            n.setdefault("dropins", []).append({k: str(d[k]) for k in ("name", "contents") if k in d})
        units.append(n)
    if units:
        out["systemd"] = {"units": units}
    return out


def render(bu_path, files_dir=None):
    with open(bu_path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    return json.dumps(translate(doc, files_dir), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="fail when OUT differs from the rendering of IN")
    p.add_argument("--files-dir", help="base directory of `local:` contents, as butane --files-dir")
    p.add_argument("input", nargs="?", default=os.path.join(HERE, "etcdadm.bu"))
    p.add_argument("output", nargs="?")
    a = p.parse_args()
    out = a.output or os.path.splitext(a.input)[0] + ".ign"
    try:
        text = render(a.input, a.files_dir)
    except (Error, OSError, yaml.YAMLError) as e:
        sys.exit(f"render.py: {a.input}: {e}")
    if a.check:
        try:
            with open(out, encoding="utf-8") as f:
                old = f.read()
        except OSError as e:
            sys.exit(f"render.py: {e}")
        if old != text:
            sys.stderr.writelines(difflib.unified_diff(old.splitlines(True), text.splitlines(True), out, "rendered"))
            sys.exit(f"render.py: {out} is stale; run python3 {os.path.relpath(__file__)}")
        return
    if out == "-":
        sys.stdout.write(text)
        return
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
