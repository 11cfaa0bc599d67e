"""The contract rules without pytest: ``check_provider(...)`` runs them and returns a readable report.

For a plugin author in a notebook: write the provider in a cell, then
``print(check_provider(MyProvider, emulator=MyEmulator))``.
"""

from __future__ import annotations

import inspect
import logging
import traceback
from typing import Any, Literal

import anyio
import attrs

import tidings
from tidings.testing.contract import ContractBroken, ProviderContract

__all__ = ["ContractReport", "RuleResult", "check_provider"]


@attrs.frozen
class RuleResult:
    rule: str
    passed: bool
    message: str = ""


@attrs.frozen
class ContractReport:
    """One line per rule; ``ok`` when every rule held."""

    provider: str
    results: tuple[RuleResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.passed for r in self.results)

    def __str__(self) -> str:
        held = sum(r.passed for r in self.results)
        lines = [f"{self.provider}: {held}/{len(self.results)} contract rules hold"]
        lines += [f"  {'ok  ' if r.passed else 'FAIL'} {r.rule}{': ' + r.message if r.message else ''}"
                  for r in self.results]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        return "<pre>" + html.escape(str(self)) + "</pre>"


class _LogCapture(logging.Handler):
    """What pytest's ``caplog`` gives the rules: ``set_level`` and the captured ``text``."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def set_level(self, level: int, logger: str | None = None) -> None:
        logging.getLogger(logger).setLevel(level)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


async def _run_rule(contract: ProviderContract, name: str) -> RuleResult:
    method = getattr(contract, name)
    rule = name.removeprefix("test_contract_").replace("_", "-")
    kwargs: dict[str, Any] = {}
    capture = _LogCapture()
    if "caplog" in inspect.signature(method).parameters:
        kwargs["caplog"] = capture
    root = logging.getLogger()
    level = root.level
    root.addHandler(capture)
    try:
        await method(**kwargs)
    except ContractBroken as exc:
        return RuleResult(rule, False, str(exc).split(" broken: ", 1)[-1])  # the rule is named already
    except Exception as exc:
        last = traceback.extract_tb(exc.__traceback__)[-1]
        return RuleResult(rule, False, f"{type(exc).__name__}: {exc} (at {last.filename}:{last.lineno})")
    finally:
        root.removeHandler(capture)
        root.setLevel(level)
    return RuleResult(rule, True)


def check_provider(
    provider: Any,
    emulator: type[Any] | None = None,
    *,
    backend: Literal["asyncio", "trio"] = "asyncio",
    scenario_size: int = 20,
) -> ContractReport:
    """Run every contract rule against ``provider`` and its emulator; never raises for a broken rule.

    :param provider: a provider name, or a plugin (class or object) to register first
        (registering it again replaces an earlier copy).
    :param emulator: the emulator class; default: the one the provider's ``ProviderInfo`` names.
    """
    if isinstance(provider, str):
        name = provider
    else:
        name = tidings.register(provider).provider_info().name
    info = tidings.providers()[name].info
    emulator_class = emulator or info.emulator
    if emulator_class is None:
        raise tidings.ConfigurationError("pass emulator=: this provider names no emulator", provider=name)
    contract_class = type("Contract", (ProviderContract,), {
        "provider": name, "emulator_class": emulator_class, "scenario_size": scenario_size,
    })
    contract = contract_class()
    rules = sorted(n for n in dir(contract) if n.startswith("test_contract_"))

    async def run_all() -> list[RuleResult]:
        return [await _run_rule(contract, rule) for rule in rules]

    return ContractReport(name, tuple(anyio.run(run_all, backend=backend)))
