"""Copy the web app's third-party files from their npm packages into web/vendor/.

    .venv/bin/python tools/vendor_web.py

Each package is fetched with `npm pack` at the pinned version (npm checks the registry's
integrity hash), and only the files the app and the API docs load are copied, with the
package's licence files beside them. web/vendor/MANIFEST.json records what came from where
(package, version, integrity, sha256 of each file); a test checks the copies against it.
The files are committed: serving the app needs neither npm nor a network.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "web" / "vendor"
LICENCE_NAMES = ("LICENSE", "LICENSE.md", "LICENSE-MPL", "NOTICE")


@dataclass(frozen=True, slots=True, kw_only=True)
class Package:
    name: str
    version: str
    folder: str
    # package path -> path under the folder
    files: dict[str, str]


FONT_WEIGHTS = (300, 400, 700)


def _fonts(family: str) -> dict[str, str]:
    return {
        f"files/{family}-{subset}-{weight}-normal.woff2": f"{family}-{subset}-{weight}.woff2"
        for weight in FONT_WEIGHTS
        for subset in ("latin", "latin-ext")
    }


PACKAGES = (
    Package(name="marked", version="18.2.1", folder="marked", files={"lib/marked.esm.js": "marked.esm.js"}),
    Package(name="dompurify", version="3.4.18", folder="dompurify", files={"dist/purify.es.mjs": "purify.es.mjs"}),
    Package(
        name="socket.io-client",
        version="4.8.4",
        folder="socket.io-client",
        files={"dist/socket.io.esm.min.js": "socket.io.esm.min.js"},
    ),
    Package(
        name="swagger-ui-dist",
        version="5.35.0",
        folder="swagger-ui",
        files={
            "swagger-ui-bundle.js": "swagger-ui-bundle.js",
            "swagger-ui-bundle.js.LICENSE.txt": "swagger-ui-bundle.js.LICENSE.txt",
            "swagger-ui.css": "swagger-ui.css",
            "favicon-32x32.png": "favicon-32x32.png",
        },
    ),
    Package(
        name="redoc", version="3.0.1", folder="redoc", files={"bundles/redoc.standalone.js": "redoc.standalone.js"}
    ),
    Package(name="@fontsource/montserrat", version="5.3.0", folder="fonts", files=_fonts("montserrat")),
    Package(name="@fontsource/roboto", version="5.3.0", folder="fonts", files=_fonts("roboto")),
)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pack(package: Package, work: Path) -> tuple[Path, str]:
    """The package's unpacked folder and its registry integrity."""
    out = subprocess.run(
        ["npm", "pack", "--json", "--pack-destination", str(work), f"{package.name}@{package.version}"],
        check=True,
        capture_output=True,
        text=True,
    )
    info = json.loads(out.stdout)[0]
    target = work / info["filename"].removesuffix(".tgz")
    with tarfile.open(work / info["filename"]) as archive:
        archive.extractall(target, filter="data")
    return target / "package", str(info["integrity"])


def _copy(package: Package, source: Path) -> dict[str, str]:
    folder = VENDOR / package.folder
    folder.mkdir(parents=True, exist_ok=True)
    copied: dict[str, str] = {}
    licences = {name: f"LICENSES/{package.name.replace('/', '+')}-{name}" for name in LICENCE_NAMES}
    wanted = {**package.files, **{name: path for name, path in licences.items() if (source / name).exists()}}
    for inner, outer in wanted.items():
        destination = (VENDOR / outer) if outer.startswith("LICENSES/") else folder / outer
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / inner, destination)
        copied[str(destination.relative_to(VENDOR))] = _sha256(destination)
    return copied


def _font_rules(package: Package, source: Path) -> list[str]:
    """The package's own @font-face rules (with their unicode-range) for the subsets copied,
    pointing at the copies and without the WOFF fallback."""
    rules = []
    for weight in FONT_WEIGHTS:
        for block in re.findall(r"/\* (\S+) \*/\s*(@font-face \{.*?\})", (source / f"{weight}.css").read_text(), re.S):
            name, rule = block
            woff2 = f"files/{name}.woff2"
            if woff2 in package.files:
                rule = re.sub(r"src: [^;]*;", f"src: url(./{package.files[woff2]}) format('woff2');", rule)
                rules.append(rule)
    return rules


def main() -> None:
    shutil.rmtree(VENDOR, ignore_errors=True)
    VENDOR.mkdir(parents=True)
    manifest = []
    font_rules: list[str] = []
    with tempfile.TemporaryDirectory() as temporary:
        for package in PACKAGES:
            source, integrity = _pack(package, Path(temporary))
            licence = json.loads((source / "package.json").read_text()).get("license", "")
            files = _copy(package, source)
            if package.folder == "fonts":
                font_rules += _font_rules(package, source)
            manifest.append(
                {"name": package.name, "version": package.version, "integrity": integrity, "license": licence}
                | {"files": files}
            )
    fonts = VENDOR / "fonts" / "fonts.css"
    fonts.write_text(
        "/* Generated by tools/vendor_web.py from the @fontsource packages (OFL-1.1). */\n"
        + "\n".join(font_rules)
        + "\n"
    )
    manifest.append({"name": "fonts.css", "generated": True, "files": {"fonts/fonts.css": _sha256(fonts)}})
    (VENDOR / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"vendored {len(PACKAGES)} packages into {VENDOR.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
