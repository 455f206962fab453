"""The output of `sam build` (make test runs it before pytest): the layer puts the
package where Lambda looks for it, /opt/python/shelflife, built for arm64 python3.12."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.template import ROOT, load_template

BUILD = ROOT / ".aws-sam" / "build"
SOURCE = ROOT / "layers" / "shelflife" / "shelflife"
ELF_MACHINE_AARCH64 = 183

pytestmark = pytest.mark.build


@pytest.fixture(scope="module")
def layer_python() -> Path:
    built = BUILD / "template.yaml"
    if not built.exists():
        pytest.fail("no `sam build` output in .aws-sam/build: run `make build` (make test does)")
    content_uri: str = load_template(built)["Resources"]["SharedLayer"]["Properties"]["ContentUri"]
    return BUILD / content_uri / "python"


def test_the_package_is_at_the_layers_python_root(layer_python: Path) -> None:
    assert (layer_python / "shelflife" / "__init__.py").is_file()
    assert not (layer_python / "python").exists()
    assert not list((layer_python / "shelflife").rglob("__pycache__"))


def test_the_built_package_is_the_source(layer_python: Path) -> None:
    built = sorted(
        p.relative_to(layer_python / "shelflife")
        for p in (layer_python / "shelflife").rglob("*.py")
    )
    source = sorted(p.relative_to(SOURCE) for p in SOURCE.rglob("*.py"))

    assert built == source
    mismatch = [
        str(p)
        for p in source
        if not filecmp.cmp(SOURCE / p, layer_python / "shelflife" / p, shallow=False)
    ]
    assert mismatch == [], "stale build: run `make build`"


def test_shelflife_imports_from_the_layer_alone(layer_python: Path) -> None:
    # -I -S: no site-packages, no editable install, no PYTHONPATH; only the layer, as
    # at /opt/python in Lambda. The pure-Python modules import on any machine.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import shelflife, shelflife.domain.errors as errors;"
        "print(shelflife.__file__); print(errors.ObjectNotFound.__mro__[1].__name__)"
    )
    result = subprocess.run(
        # -B: no __pycache__ written into the build (a second run would find it).
        [sys.executable, "-B", "-I", "-S", "-c", code, str(layer_python)],
        capture_output=True,
        text=True,
        check=True,
    )
    location, parent = result.stdout.split()

    assert Path(location) == layer_python / "shelflife" / "__init__.py"
    assert parent == "StorageError"


def test_the_layer_carries_the_price_book(layer_python: Path) -> None:
    built = layer_python / "shelflife" / "domain" / "prices.toml"
    source = SOURCE / "domain" / "prices.toml"
    assert built.read_bytes() == source.read_bytes()


@pytest.mark.parametrize(
    "package",
    ["aws_lambda_powertools", "b2sdk", "boto3", "botocore", "PIL", "pydantic", "pynamodb"],
)
def test_dependencies_are_in_the_layer(layer_python: Path, package: str) -> None:
    assert (layer_python / package / "__init__.py").is_file()


def test_native_code_is_built_for_arm64_python_312(layer_python: Path) -> None:
    extensions = list((layer_python / "PIL").glob("_imaging.*.so")) + list(
        (layer_python / "pydantic_core").glob("_pydantic_core.*.so")
    )

    assert len(extensions) == 2
    for extension in extensions:
        assert "cpython-312-aarch64-linux-gnu" in extension.name
        header = extension.read_bytes()[:20]
        assert header[:4] == b"\x7fELF"
        assert int.from_bytes(header[18:20], "little") == ELF_MACHINE_AARCH64


@pytest.mark.parametrize("function", ["IngestFunction"])
def test_each_function_ships_its_handler_and_nothing_else(function: str) -> None:
    # Dependencies come from the layer only; a function folder with site-packages in it
    # would shadow the layer's pinned versions.
    built = BUILD / function
    handler = load_template(BUILD / "template.yaml")["Resources"][function]["Properties"]["Handler"]
    module = handler.split(".")[0]

    assert (built / f"{module}.py").is_file()
    assert sorted(p.name for p in built.iterdir() if p.name != "__pycache__") == [
        "__init__.py",
        f"{module}.py",
    ]
