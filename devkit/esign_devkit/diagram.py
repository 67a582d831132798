"""`python -m bot flows --mermaid`: the conversation's states and transitions, read off the code.

The states a handler listens in come from the production dispatcher's routers (its State
filters); the states it moves to come from the handler's source: every `flow.go(event, X)`
(or `state.set_state(X)`) in it, or in the module functions it calls. A handler with no State filter works from any
step (drawn from `[*]`).
"""
from __future__ import annotations

import ast
import inspect
import textwrap
import types
from collections.abc import Iterator
from dataclasses import dataclass

from aiogram import Bot, Dispatcher, Router
from aiogram.filters import StateFilter
from aiogram.fsm.state import State

HOME = "home"  # the default step (no state): 首页
MOVES = {"go": 1, "set_state": 0}  # flow.go(event, X), state.set_state(X): where X sits


@dataclass(frozen=True, order=True)
class Transition:
    source: str  # a state name, HOME, or "*" (any step)
    target: str
    trigger: str  # the handler's name


def _state_name(state: State | None) -> str:
    return HOME if state is None or state.state is None else state.state.replace(":", "_")


def _states_in(check: object) -> list[State]:
    """The states a filter lets through: a State, a StateFilter, or either wrapped in a function."""
    if isinstance(check, State):
        return [check]
    if isinstance(check, StateFilter):
        return [s for s in check.states if isinstance(s, State)]
    if isinstance(check, types.FunctionType):
        wrapped = [c.cell_contents for c in check.__closure__ or () if _cell_filled(c)]
        return [state for inner in wrapped if isinstance(inner, State | StateFilter) for state in _states_in(inner)]
    return []


def _handlers(router: Router) -> Iterator[tuple[str, object]]:
    for event, observer in router.observers.items():
        for handler in observer.handlers:
            yield event, handler
    for child in router.sub_routers:
        yield from _handlers(child)


def _targets(function: types.FunctionType, seen: set[object] | None = None) -> set[str]:
    """States reached by `*.go(_, X)` calls in the function and the module functions it calls."""
    seen = seen if seen is not None else set()
    if function in seen:
        return set()
    seen.add(function)
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError):
        return set()
    names = {**function.__globals__, **_closure(function)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Attribute) and node.func.attr in MOVES:
            position = MOVES[node.func.attr]
            if len(node.args) > position:
                found |= _resolve_state(node.args[position], names)
        # A shared step helper is handed its steps: request_code(..., code_step=Billing.code).
        for keyword in node.keywords:
            if keyword.arg and keyword.arg.endswith("_step"):
                found |= _resolve_state(keyword.value, names)
        if isinstance(node.func, ast.Name):
            callee = names.get(node.func.id)
            if isinstance(callee, types.FunctionType) and callee.__module__.startswith("bot.flows"):
                found |= _targets(callee, seen)
    return found


def _closure(function: types.FunctionType) -> dict[str, object]:
    cells = function.__closure__ or ()
    return {name: cell.cell_contents for name, cell in zip(function.__code__.co_freevars, cells, strict=True)
            if _cell_filled(cell)}


def _cell_filled(cell: types.CellType) -> bool:
    try:
        _ = cell.cell_contents  # an empty cell raises ValueError
    except ValueError:
        return False
    return True


def _resolve_state(node: ast.expr, names: dict[str, object]) -> set[str]:
    if isinstance(node, ast.Constant) and node.value is None:
        return {HOME}
    if isinstance(node, ast.IfExp):  # go(event, A if cond else B)
        return _resolve_state(node.body, names) | _resolve_state(node.orelse, names)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        group = names.get(node.value.id)
        state = getattr(group, node.attr, None)
        if isinstance(state, State):
            return {_state_name(state)}
    return set()


def transitions(dp: Dispatcher) -> list[Transition]:
    found: set[Transition] = set()
    for _, handler in _handlers(dp):
        callback = handler.callback
        if not isinstance(callback, types.FunctionType):
            continue
        sources = {_state_name(state) for f in handler.filters or [] for state in _states_in(f.callback)}
        for target in _targets(callback):
            for source in sources or {"*"}:
                found.add(Transition(source, target, callback.__name__))
    return sorted(found)


def mermaid(dp: Dispatcher) -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {HOME}"]
    for t in transitions(dp):
        source = "[*]" if t.source == "*" else t.source
        lines.append(f"    {source} --> {t.target}: {t.trigger}")
    return "\n".join(lines) + "\n"


def render_markdown(dp: Dispatcher) -> str:
    return (
        "# Conversation flows\n\n"
        "Generated by `python -m bot flows --mermaid --markdown > docs/flows.md`; a test checks it is\n"
        "current. Each arrow is a handler (its name is the label) moving the conversation from the\n"
        "step it listens in to a step it goes to; `[*]` means the handler works from any step.\n\n"
        "```mermaid\n" + mermaid(dp) + "```\n"
    )


def main(argv: list[str]) -> int:
    import argparse

    import fakeredis

    from bot.app import build_context, build_dispatcher
    from config.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m bot flows", description=__doc__.splitlines()[0])
    parser.add_argument("--mermaid", action="store_true", help="print a Mermaid state diagram (the default)")
    parser.add_argument("--markdown", action="store_true", help="wrap it as docs/flows.md")
    args = parser.parse_args(argv)
    # The diagram needs the dispatcher's routers only: no Redis server, no token.
    dp = build_dispatcher(build_context(Settings(_env_file=None), fakeredis.aioredis.FakeRedis()), Bot("42:DIAGRAM"))
    print(render_markdown(dp) if args.markdown else mermaid(dp), end="")
    return 0
