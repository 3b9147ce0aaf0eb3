"""What `sam build` produced imports as it will in Lambda: the function's folder, the layer, the runtime.

Each function is imported in a fresh `python -S -B` (no site-packages) whose path holds only the
function's build folder, the layer's python/ folder, the standard library and the packages the
Lambda Python runtime itself provides (boto3 and its dependencies, linked from this venv).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sam_template import BUILD_DIR, functions

LAYER_DIR = BUILD_DIR / "SegmentationLayer" / "python"
# What the python3.12 Lambda runtime ships outside the standard library.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py")

pytestmark = pytest.mark.skipif(
    not BUILD_DIR.is_dir(), reason=f"{BUILD_DIR} is absent: run `make sam` (make test does) first"
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
