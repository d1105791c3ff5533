import importlib
import pkgutil
import subprocess
import sys

import pytest

import labelwise

PACKAGES = [
    "labelwise",
    "labelwise.strategies",
    "labelwise.policy",
    "labelwise.simulation",
    "labelwise.quality",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_complete(name):
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported == sorted(exported), f"{name}.__all__ is not sorted"
    for item in exported:
        assert hasattr(module, item), f"{name}.__all__ names missing {item}"
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and not isinstance(v, type(sys))
        and getattr(v, "__module__", "").startswith(name)
    }
    assert public <= set(exported), f"{name} exports {public - set(exported)} silently"


def test_every_module_imports():
    for info in pkgutil.walk_packages(labelwise.__path__, "labelwise."):
        if info.name.startswith("labelwise.service.store.migrations."):
            continue  # Alembic scripts: only Alembic runs them
        importlib.import_module(info.name)


def test_library_import_loads_no_service_dependencies():
    code = (
        "import sys\n"
        "import labelwise, labelwise.strategies, labelwise.policy, "
        "labelwise.simulation, labelwise.calibration, labelwise.models, "
        "labelwise.stopping, labelwise.metrics, labelwise.data, labelwise.quality\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'sqlalchemy', 'fastapi', 'typer', 'starlette', 'alembic'} "
        "or m.startswith('labelwise.service') or m.startswith('labelwise.cli'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_version_is_exposed():
    assert labelwise.__version__.count(".") == 2
