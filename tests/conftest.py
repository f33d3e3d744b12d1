"""Shared fixtures. Frameworks are never imported in the pytest process (some crash when imported
together): framework code runs in a lossconf worker process per framework, through ``framework``."""

from __future__ import annotations

import pytest

from lossconf.adapters.loading import load_adapter
from lossconf.supervisor import Worker

_WORKERS: dict[str, Worker] = {}


class FrameworkProcess:
    """A live worker process with one adapter loaded: call its implementations or run test code there."""

    def __init__(self, worker: Worker, describe: dict) -> None:
        self.worker, self.describe = worker, describe
        self.impls = {i["name"]: i for i in describe["implementations"]}

    def call(self, impl: str, dtype: str, first, second=None, params=None):
        """(value, grad) of implementation ``impl`` through the adapter, in ``dtype``."""
        params = {"reduction": "none", **(params or {})}
        value, grad, _ = self.worker.call(impl, dtype, first, second, params)
        return value, grad

    def run(self, function: str, *args):
        """``function(adapter, *args)`` executed in the worker; ``function`` is 'module:name'."""
        return self.worker.request(("exec", function, args))


@pytest.fixture(scope="session")
def framework():
    """Factory: ``framework("torch")`` -> FrameworkProcess, or a skip naming why it is unavailable."""

    def get(name: str) -> FrameworkProcess:
        adapter = load_adapter(name)
        reason = adapter.available()
        if reason:
            pytest.skip(reason)
        if name not in _WORKERS:
            w = Worker(adapter.target, timeout=300)
            w.start()
            _WORKERS[name] = w
        w = _WORKERS[name]
        return FrameworkProcess(w, w.request(("describe",)))

    yield get
    for w in _WORKERS.values():
        w.close()


@pytest.fixture(scope="session")
def real_run(tmp_path_factory):
    """Factory: ``real_run(adapters=("torch",), ...)`` -> results.json of a real run (RunConfig fields), as
    written to disk; a skip naming why when one of its adapters is not installed."""
    from lossconf.results import load
    from lossconf.runner import RunConfig, run

    def go(**config) -> dict:
        for name in config["adapters"]:
            reason = load_adapter(name).available()
            if reason:
                pytest.skip(reason)
        out = tmp_path_factory.mktemp("run")
        run(RunConfig(out=out, **config))
        return load(out / "results.json")

    return go


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]):
    """Under ``--dist loadgroup`` (pyproject.toml), tests sharing costly set-up go to one xdist worker, so it
    is paid once: tests/test_adapter_<name>.py form the group <name>, which test_conformance's <name> matrix
    joins (each framework's worker processes are started by one xdist worker, not by both), and the tests
    of a module using one of its module-scoped fixtures (a real run, a browser) form that module's group."""
    for item in items:  # before xdist's own hook reads the marks
        if item.path.stem.startswith("test_adapter_"):
            item.add_marker(pytest.mark.xdist_group(item.path.stem.removeprefix("test_adapter_")))
        elif any(d.scope == "module" for defs in item._fixtureinfo.name2fixturedefs.values() for d in defs):
            item.add_marker(pytest.mark.xdist_group(item.path.stem))
    result = yield
    if getattr(config.option, "loadgroup", False):  # set in xdist's workers only
        _check_xdist_groups(items)
    return result


def _check_xdist_groups(items: list[pytest.Item]) -> None:
    """xdist 3.8 tells its scheduler an item's group by appending ``@group`` to its node id; under pytest 9.2
    the suffix is lost (https://github.com/pytest-dev/pytest-xdist/issues/1386, hence ``pytest<9.2`` in
    constraints.txt) and every group was split over both workers, each adapter's matrix and module fixture
    running twice. Stop rather than pay that silently."""
    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        if names and not item.nodeid.endswith("@" + "_".join(names)):
            raise pytest.UsageError(f"--dist loadgroup: {item.nodeid} lost its xdist group {names} (see pytest-xdist "
                                    "issue 1386); use a pytest whose node ids xdist can mark (constraints.txt)")
