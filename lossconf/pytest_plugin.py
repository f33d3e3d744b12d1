"""pytest plugin: ``pytest --lossconf-adapter TARGET`` runs the check-adapter battery as pytest tests.

Options (the plugin adds nothing unless ``--lossconf-adapter`` is given):

- ``--lossconf-adapter TARGET`` (repeatable): a built-in name, ``package.module:Attr`` or
  ``path/to/file.py:Attr``;
- ``--lossconf-budget N`` (random cases per loss, default 16), ``--lossconf-seed N`` (default 0);
- ``--lossconf-dtypes a,b`` and ``--lossconf-losses a,b`` restrict the matrix.

Collection starts one worker process per adapter and plans both parts, so every test id exists
before anything runs: contract items ``contract:<adapter>:<impl>-<dtype>-<check>`` and conformance
items ``<adapter>:<impl>-<dtype>-<case>`` (value and gradient in one test). The first item that runs
executes the contract battery and then the whole matrix, once per process; each item then asserts
on its own checks. Unsupported combinations are skipped with the declared reason.

pytest-xdist (``-n 2``): every xdist worker collects the same ids (same seed, same plan) and runs the
battery and the matrix itself, then asserts only the items xdist gives it. That costs one matrix per
xdist worker but needs no coordination between them, so the verdicts cannot depend on the
scheduling.
"""

from __future__ import annotations

import pytest

from lossconf.contract import ContractBattery, ContractCheck

_KEY = pytest.StashKey["_LossconfBattery"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the --lossconf-* options."""
    group = parser.getgroup("lossconf", "lossconf adapter conformance (contract battery + matrix)")
    group.addoption("--lossconf-adapter", action="append", default=[], metavar="TARGET",
                    help="adapter to check: name, package.module:Attr or path/to/file.py:Attr (repeatable)")
    group.addoption("--lossconf-budget", type=int, default=16, metavar="N", help="random cases per loss (16)")
    group.addoption("--lossconf-seed", type=int, default=0, metavar="N", help="seed of the random cases (0)")
    group.addoption("--lossconf-dtypes", default=None, metavar="LIST", help="comma-separated dtypes (all four)")
    group.addoption("--lossconf-losses", default=None, metavar="LIST", help="comma-separated loss ids (all)")


def _csv(value: str | None) -> tuple[str, ...] | None:
    if not value:
        return None
    return tuple(v.strip() for v in value.split(",") if v.strip()) or None


class LossconfFailure(Exception):
    """A check that did not conform; its message explains itself."""


class _LossconfBattery:
    """The contract batteries and the conformance session of one pytest process."""

    def __init__(self, config: pytest.Config) -> None:
        from lossconf.adapters.loading import AdapterLoadError, load_adapter
        from lossconf.testing import ConformanceSession

        opt = config.option
        if opt.lossconf_budget < 0:
            raise pytest.UsageError(f"--lossconf-budget: expected a non-negative integer, got {opt.lossconf_budget}")
        self.targets = tuple(opt.lossconf_adapter)
        adapters = {}
        for target in self.targets:
            try:
                adapters[target] = load_adapter(target)
            except AdapterLoadError as exc:
                raise pytest.UsageError(f"--lossconf-adapter: {exc}") from None
        try:
            self.session = ConformanceSession(self.targets, budget=opt.lossconf_budget, seed=opt.lossconf_seed,
                                              dtypes=_csv(opt.lossconf_dtypes), losses=_csv(opt.lossconf_losses))
        except Exception as exc:  # RunError: an unknown loss or dtype
            raise pytest.UsageError(f"--lossconf-*: {exc}") from None
        self.load_problems: list[tuple[str, str]] = []
        self.batteries: list[ContractBattery] = []
        for target, adapter in adapters.items():
            plan = self.session.run.plans.get(adapter.name)
            if plan is None:
                continue  # not installed or failed to load: ConformanceSession has an item saying so
            try:
                self.batteries.append(ContractBattery(
                    plan.worker, plan.desc, self.session.config.dtypes, losses=self.session.config.losses,
                    seed=opt.lossconf_seed, target=target, known=self.session.run.known))
            except Exception as exc:  # the worker died while planning
                self.load_problems.append((f"contract:{adapter.name}:planning", str(exc)))
        self._ran = False

    def ensure_ran(self) -> None:
        """Contract batteries first (they share the workers), then the matrix; once per process."""
        if not self._ran:
            self._ran = True
            for battery in self.batteries:
                battery.run()
            self.session.results()

    def contract_outcome(self, check: ContractCheck) -> tuple[str, str]:
        """('pass'|'skip'|'fail', explanation) of one contract check."""
        self.ensure_ran()
        if check.status == "pass":
            return "pass", ""
        if check.status == "skipped":
            return "skip", check.message
        return "fail", f"{check.id}: CONTRACT {check.status.upper()} - {check.message}\n  reproduce:\n" + "\n".join(
            "    " + line for line in check.reproduce.splitlines())


class LossconfItem(pytest.Item):
    """One lossconf check group as a pytest test."""

    def __init__(self, *, outcome, **kwargs) -> None:
        super().__init__(**kwargs)
        self._outcome = outcome

    def runtest(self) -> None:
        """Assert on this item's checks (the battery runs on first use)."""
        outcome, why = self._outcome()
        if outcome == "skip":
            pytest.skip(why)
        if outcome != "pass":
            raise LossconfFailure(why)

    def repr_failure(self, excinfo, style=None):
        """The self-explaining message, without a traceback into lossconf."""
        if isinstance(excinfo.value, LossconfFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, self.name


class LossconfCollector(pytest.Collector):
    """Parent of every lossconf item (node id prefix ``lossconf``)."""

    def collect(self):
        battery: _LossconfBattery = self.config.stash[_KEY]
        items = []
        for name, why in battery.load_problems:
            items.append(LossconfItem.from_parent(self, name=name, outcome=lambda why=why: ("fail", why)))
        for b in battery.batteries:
            for check in b.checks:
                items.append(LossconfItem.from_parent(
                    self, name=check.id, outcome=lambda c=check: battery.contract_outcome(c)))
        for item in battery.session.items:
            items.append(LossconfItem.from_parent(self, name=item.id, outcome=lambda i=item: _conformance(battery, i)))
        return items


def _conformance(battery: _LossconfBattery, item) -> tuple[str, str]:
    battery.ensure_ran()
    return battery.session.outcome(item)


def pytest_configure(config: pytest.Config) -> None:
    """Nothing unless --lossconf-adapter is given."""
    if config.getoption("lossconf_adapter", default=None):
        config.addinivalue_line("markers", "lossconf: a lossconf contract or conformance check")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """Append the lossconf items (contract first, then conformance) after the ordinary tests."""
    if not config.getoption("lossconf_adapter", default=None):
        return
    if _KEY not in config.stash:
        config.stash[_KEY] = _LossconfBattery(config)
    collector = LossconfCollector.from_parent(session, name="lossconf", nodeid="lossconf")
    items.extend(collector.collect())  # pytest's own -k/-m selection runs after this hook
