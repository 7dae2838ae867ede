"""constraints.txt: every requirement is pinned, every pin lies in its requirement's range, and the check of
scripts/setup_env.sh notices an environment that differs from the pins."""
import re
import subprocess
import sys

from packaging.requirements import Requirement

from tests.comfy_host import ROOT

SCRIPT = ROOT / "scripts" / "constraints.py"


def pins(path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            out[re.sub(r"[-_.]+", "-", name).lower()] = version
    return out


def test_every_requirement_is_pinned_inside_its_range():
    pinned = pins(ROOT / "constraints.txt")
    for req_file in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / req_file).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            req = Requirement(line)
            name = re.sub(r"[-_.]+", "-", req.name).lower()
            assert name in pinned, f"{req.name} ({req_file}) has no pin in constraints.txt"
            assert req.specifier.contains(pinned[name], prereleases=True), \
                f"constraints.txt pins {req.name}=={pinned[name]}, outside {req_file}'s '{req.specifier}'"


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def test_check_notices_a_differing_environment(tmp_path):
    frozen = tmp_path / "constraints.txt"
    assert run("freeze", str(frozen)).returncode == 0
    assert not {"torch", "torchvision", "torchaudio"} & set(pins(frozen))  # the host owns torch
    assert run("check", str(frozen)).returncode == 0
    numpy = pins(frozen)["numpy"]
    frozen.write_text(frozen.read_text().replace(f"numpy=={numpy}", "numpy==1.0.0"))
    result = run("check", str(frozen))
    assert result.returncode == 1 and f"numpy {numpy} (constraints.txt: 1.0.0)" in result.stderr
    assert run("diff", str(frozen)).returncode == 0
    frozen.write_text("numpy>=1\n")
    assert "is not an exact pin" in run("check", str(frozen)).stderr
