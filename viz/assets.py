"""Offline JavaScript for the bertviz views: d3 v5 (from mpld3) and jQuery (from xstatic-jquery), plus a require shim.

The files come from installed Python packages, never from a CDN. Packages are located with importlib without
importing them (importing mpld3 would pull in matplotlib).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path


class MissingAssetError(RuntimeError):
    """An offline JavaScript file is missing: says which package to install."""


def _package_dir(package: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingAssetError(f"the offline bertviz view needs the '{pip_name}' package: pip install {pip_name}")
    return Path(list(spec.submodule_search_locations)[0])


def _read(package: str, pip_name: str, relative: str) -> str:
    path = _package_dir(package, pip_name) / relative
    if not path.is_file():
        raise MissingAssetError(f"{path} is missing; reinstall '{pip_name}' (pip install --force-reinstall {pip_name})")
    # inline-safe: a "</script" inside the source would close the inline <script> element early
    return path.read_text(encoding="utf-8").replace("</script", "<\\/script")


@lru_cache(maxsize=1)
def d3_source() -> str:
    """d3 v5 (minified), shipped by the mpld3 package as mpld3/js/d3.v5.min.js."""
    return _read("mpld3", "mpld3", "js/d3.v5.min.js")


@lru_cache(maxsize=1)
def jquery_source() -> str:
    """jQuery (minified), shipped by XStatic-jQuery as xstatic/pkg/jquery/data/jquery.min.js."""
    return _read("xstatic.pkg.jquery", "XStatic-jQuery", "data/jquery.min.js")


# bertviz's scripts call require.config(...) and requirejs(['jquery', 'd3'], callback). With d3 and jQuery
# inlined as globals, this shim hands them to the callback; no loader, no network.
REQUIRE_SHIM = """(function () {
  var modules = {d3: window.d3, jquery: window.jQuery};
  function require(names, callback) {
    var found = names.map(function (name) { return modules[name]; });
    if (callback) { callback.apply(window, found); }
  }
  require.config = function () {};
  window.require = require;
  window.requirejs = require;
})();"""
