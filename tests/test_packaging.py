"""pyproject.toml is the one list of dependencies: environment.yml, the extras and the layers agree with it."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower()


def _requirements(extra: str, data: dict, seen: set[str] | None = None) -> set[str]:
    """Every requirement of ``extra``, following ``bgkit[...]`` self-references."""
    seen = seen if seen is not None else set()
    out: set[str] = set()
    for req in data["project"]["optional-dependencies"][extra]:
        m = re.fullmatch(r"bgkit\[(.+)\]", req.strip())
        if m:
            for sub in m.group(1).split(","):
                if sub not in seen:
                    seen.add(sub)
                    out |= _requirements(sub, data, seen)
        else:
            out.add(req.strip())
    return out


def test_environment_yml_lists_exactly_the_core_and_dev_requirements_of_pyproject():
    import yaml

    data = _pyproject()
    wanted = {r for r in data["project"]["dependencies"]} | _requirements("dev", data)
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {r for r in pip if r != "-e ."}
    assert listed == wanted, f"environment.yml differs from pyproject.toml: missing {wanted - listed}, extra {listed - wanted}"
    assert "-e ." in pip and "python=3.11" in conda and "pip" in conda


def test_the_core_imports_without_the_optional_packages(tmp_path):
    """A fresh interpreter in which the extras' packages cannot be imported: the core still works, and
    each optional feature says which extra installs it."""
    import subprocess

    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import sys\n"
        "# None in sys.modules: 'import x' raises ModuleNotFoundError, importlib.util.find_spec('x') is None\n"
        "for name in ('av', 'onnxruntime', 'openvino', 'onnx', 'numba', 'matplotlib', 'ipywidgets', 'anywidget', 'tqdm'):\n"
        "    sys.modules[name] = None\n"
    )
    code = (
        "import bgkit, numpy as np\n"
        "from bgkit.io.sample import sample_image\n"
        "seg = bgkit.load_segmenter('selfie', device='cpu')\n"
        "print(seg.backend)\n"
        "print(bgkit.Pipeline(seg, effect='bokeh').process(sample_image()).picture.shape)\n"
        "for call in (lambda: bgkit.process_video('x.mp4', 'y.mp4', seg), lambda: bgkit.load_segmenter('selfie', backend='openvino')):\n"
        "    try:\n"
        "        call()\n"
        "    except Exception as exc:\n"
        "        print(type(exc).__name__, exc)\n"
        "try:\n"
        "    from bgkit.widgets import StillExplorer\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "torch" and lines[1] == "(512, 512, 3)"
    assert "MissingDependencyError" in lines[2] and "bgkit[video]" in lines[2]
    assert "ValueError" in lines[3] and "bgkit[fast]" in lines[3]
    assert "MissingDependencyError" in lines[4] and "bgkit[notebook]" in lines[4]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            module = node.module or ""
            parts = path.relative_to(REPO).with_suffix("").parts[: -node.level]
            out.add(".".join([*parts, *module.split(".")]) if module else ".".join(parts))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bgkit"):
            out.add(node.module)
    return out


#: The layers, lowest first: a module may import from its own layer and the ones before it.
LAYERS = ["core", "io", "ops", "models", "pipeline", "tuning", "jobs", "widgets", "live", "eval", "bench", "cli"]


@pytest.mark.parametrize("path", sorted((REPO / "bgkit").rglob("*.py")), ids=lambda p: str(p.relative_to(REPO)))
def test_layers_import_only_downwards(path):
    rel = path.relative_to(REPO / "bgkit").with_suffix("").parts
    layer = rel[0] if rel[0] in LAYERS else None
    if layer is None:
        return  # __init__, __main__
    for module in _imports(path):
        parts = module.split(".")
        if parts[0] != "bgkit" or len(parts) < 2 or parts[1] not in LAYERS:
            continue
        target = parts[1]
        allowed = LAYERS.index(target) <= LAYERS.index(layer) or (layer, target) in {("widgets", "live")}
        assert allowed, f"{path.relative_to(REPO)} ({layer}) imports {module} ({target}), a higher layer"


def test_test_files_have_unique_names():
    """pytest imports test files by their base name (no __init__.py): two with one name collide."""
    names = [p.name for p in (REPO / "tests").rglob("test_*.py")]
    assert len(names) == len(set(names)), sorted(n for n in set(names) if names.count(n) > 1)
