"""The layer ships what pyproject.toml promises, and sam build finds its build target."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement

from tests.support.template import ROOT, load_template

LAYER = ROOT / "layers" / "shelflife"


def layer_pins() -> dict[str, Requirement]:
    lines = (LAYER / "requirements.txt").read_text().splitlines()
    pins = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return {pin.name.lower(): pin for pin in pins}


def project_dependencies() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {Requirement(text).name.lower(): Requirement(text) for text in project["dependencies"]}


def test_the_layer_pins_every_runtime_dependency_within_its_range() -> None:
    pins, ranges = layer_pins(), project_dependencies()

    assert set(pins) == set(ranges)
    for name, pin in pins.items():
        (exact,) = pin.specifier
        assert exact.operator == "==", f"{name} is not pinned"
        assert ranges[name].specifier.contains(exact.version), f"{name} {exact.version}"
        assert pin.extras == ranges[name].extras, name


def test_sam_build_finds_the_layer_target() -> None:
    layers = [
        name
        for name, body in load_template()["Resources"].items()
        if body["Type"] == "AWS::Serverless::LayerVersion"
    ]
    makefile = (LAYER / "Makefile").read_text()

    for name in layers:
        assert re.search(rf"^build-{name}:", makefile, re.MULTILINE), name
