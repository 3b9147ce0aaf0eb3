"""What `sam build` produced imports as it will in Lambda: the function's folder, the layer, the runtime.

Each function is imported in a fresh `python -S -B` (no site-packages) whose path holds only the
function's build folder, the layer's python/ folder, the standard library and the packages the
Lambda Python runtime itself provides (boto3 and its dependencies, linked from this venv).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sam_template import BUILD_DIR, REPO, functions, load_template

LAYER_DIR = BUILD_DIR / "SegmentationLayer" / "python"
# What the python3.12 Lambda runtime ships outside the standard library.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py")

pytestmark = pytest.mark.skipif(
    not BUILD_DIR.is_dir(), reason=f"{BUILD_DIR} is absent: run `make build` (make test does) first"
)

# Runs in the child: import the handler, then report where every loaded module came from.
IMPORT_PROBE = """
import json, sys, sysconfig
sys.path[:0] = json.loads(sys.argv[1])
import app
assert callable(app.lambda_handler), "lambda_handler is not callable"
files = {name: getattr(module, "__file__", None) for name, module in list(sys.modules.items())}
stdlib = [sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]]
print(json.dumps({"modules": {name: path for name, path in files.items() if path}, "stdlib": stdlib}))
"""


@pytest.fixture(scope="module")
def runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder standing in for the Lambda runtime's own site-packages."""
    folder = tmp_path_factory.mktemp("lambda-runtime")
    import boto3

    site_packages = Path(boto3.__file__).parent.parent
    for name in RUNTIME_PACKAGES:
        if (site_packages / name).exists():
            (folder / name).symlink_to(site_packages / name)
    return folder


def test_the_layer_ships_the_segmentation_package_under_python() -> None:
    assert (LAYER_DIR / "segmentation" / "__init__.py").is_file()
    assert (LAYER_DIR / "pydantic").is_dir(), "the layer's requirements.txt was not installed"


def test_the_build_holds_the_current_sources() -> None:
    """An old build would be tested here, measured by the bench and deployed: `make build` renews it."""
    trees = [(REPO / "layers" / "segmentation" / "segmentation", LAYER_DIR / "segmentation")]
    trees += [(REPO / props["CodeUri"], BUILD_DIR / logical_id) for logical_id, props in functions().items()]
    stale = []
    for source_root, built_root in trees:
        for source in source_root.rglob("*.py"):
            built = built_root / source.relative_to(source_root)
            if not built.is_file() or built.read_bytes() != source.read_bytes():
                stale.append(str(built.relative_to(BUILD_DIR)))
    assert not stale, f"older than their sources (run `make build`): {stale}"


def test_every_module_ships_bytecode_that_matches_its_source() -> None:
    """Lambda's code folders are read-only: a module without valid bytecode is compiled on every
    cold start. PEP 552 header: magic, flags (0b11: hash-based, checked), then the source's hash."""
    runtime = load_template()["Globals"]["Function"]["Runtime"]  # python3.12
    tag = "cpython-" + runtime.removeprefix("python").replace(".", "")
    assert sys.implementation.cache_tag == tag, "run the tests with the functions' Python"
    sources = sorted(BUILD_DIR.rglob("*.py"))
    assert len(sources) > 500, "the layer's dependencies are missing from the build"
    without = []
    for source in sources:
        cached = Path(importlib.util.cache_from_source(str(source)))
        header = cached.read_bytes()[:16] if cached.is_file() else b""
        expected = importlib.util.MAGIC_NUMBER + (3).to_bytes(4, "little")
        expected += importlib.util.source_hash(source.read_bytes())
        if header != expected:
            without.append(str(source.relative_to(BUILD_DIR)))
    assert not without, f"{len(without)} modules without valid bytecode, e.g. {without[:5]}"


@pytest.mark.parametrize("logical_id", sorted(functions()))
def test_handler_imports_from_the_build_alone(logical_id: str, runtime_dir: Path) -> None:
    function_dir = BUILD_DIR / logical_id
    assert (function_dir / "app.py").is_file(), f"{function_dir}/app.py is missing"
    search_path = [str(function_dir), str(LAYER_DIR), str(runtime_dir)]
    env = {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_SERVICE_NAME": "segmentation",
    }
    child = subprocess.run(
        [sys.executable, "-S", "-B", "-c", IMPORT_PROBE, json.dumps(search_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=runtime_dir,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    report = json.loads(child.stdout.splitlines()[-1])
    module_files: dict[str, str] = report["modules"]

    allowed = (*search_path, *report["stdlib"])
    strays = {name: path for name, path in module_files.items() if not path.startswith(allowed)}
    assert not strays, f"modules loaded from outside the build: {strays}"
    if "segmentation" in module_files:
        assert module_files["segmentation"].startswith(str(LAYER_DIR))
