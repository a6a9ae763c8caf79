"""`import_modules`: every module of a package imported once; a missing third-party runtime skips
only the module that needs it at import, a broken module of our own is never hidden."""

from __future__ import annotations

import sys

import pytest

from mediafm.registry import import_modules, lookup, registrar


def _package(root, name: str, modules: dict[str, str]) -> str:
    pkg = root / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for mod, body in modules.items():
        (pkg / f"{mod}.py").write_text(body)
    return name


@pytest.fixture
def on_path(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("regtest_")]:
        del sys.modules[name]


def test_every_module_registers_and_a_missing_runtime_skips_one(on_path):
    table: dict[str, object] = {}
    sys.modules["regtest_table"] = type(sys)("regtest_table")
    sys.modules["regtest_table"].register = registrar(table)
    pkg = _package(on_path, "regtest_ok", {
        "a": "import regtest_table\n@regtest_table.register('a')\nclass A: pass\n",
        "b": "import regtest_table\n@regtest_table.register('b', 'bee')\nclass B: pass\n",
        "needs_runtime": "import regtest_not_installed\n",
    })
    import_modules(pkg)
    import_modules(pkg)  # once: the second call imports nothing
    assert sorted(table) == ["a", "b", "bee"] and lookup(table, "bee", "thing") is table["b"]
    assert "regtest_ok.needs_runtime" not in sys.modules


def test_a_broken_module_of_the_package_is_raised(on_path):
    pkg = _package(on_path, "regtest_broken", {"a": "from regtest_broken.b import missing_name\n", "b": ""})
    with pytest.raises(ImportError, match="missing_name"):
        import_modules(pkg)
