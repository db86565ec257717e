"""An agent function, made into a file that runs in the sandbox: the function's own source, the
module-level imports it uses, the module's helper functions and classes it calls, and module-level
constants it reads (str, int, float, bool, None, and lists, tuples, dicts and sets of them).
Modules of the user's own project that it imports (a .py file or a package beside the script)
travel as files. What the function uses is read from its bytecode (the global names it loads), so
nothing it does not use comes along.

What cannot travel raises AgentNotPortable naming it and the fix: a lambda, a function with no
readable source (typed at the prompt), a decorated function, a function with required parameters,
a closure over or a global holding anything but a constant (a client, an open file, an object),
and a relative import. The module's other statements (its `if __name__ == "__main__":` block) do
not run in the sandbox.
"""
from __future__ import annotations

import ast
import dis
import inspect
import os
import shutil
import sys
import textwrap
import types
from typing import Any, Dict, List, Set, Tuple

from .errors import AgentNotPortable

#: Imports never carried into the sandbox: this front end itself runs on the host only.
HOST_ONLY = {"isolated_agents_sdk", "airlock_sdk"}
_CONSTANTS = (str, int, float, bool, bytes, type(None))


def _constant(value: Any) -> bool:
    if isinstance(value, _CONSTANTS):
        return True
    if isinstance(value, (list, tuple, set, frozenset)):
        return all(_constant(v) for v in value)
    if isinstance(value, dict):
        return all(_constant(k) and _constant(v) for k, v in value.items())
    return False


def _global_loads(code: types.CodeType) -> Set[str]:
    names: Set[str] = set()
    for ins in dis.get_instructions(code):
        if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL"):
            names.add(str(ins.argval))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_loads(const)
    return names


def _bound_names(node: ast.AST) -> List[str]:
    if isinstance(node, ast.Import):
        return [(a.asname or a.name.split(".")[0]) for a in node.names]
    if isinstance(node, ast.ImportFrom):
        return [(a.asname or a.name) for a in node.names]
    return []


def _top_imports(tree: ast.Module) -> List[ast.stmt]:
    """Import statements at module level, including those inside a top-level try/if (optional imports)."""
    found: List[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, (ast.Try, ast.If)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    found.append(inner)
    return found


def _root_module(node: ast.stmt) -> str:
    if isinstance(node, ast.Import):
        return node.names[0].name.split(".")[0]
    assert isinstance(node, ast.ImportFrom)
    return (node.module or "").split(".")[0]


def _local_module_path(name: str, script_dir: str) -> str:
    """The file or package folder of a module that is part of the user's project (beside the script)."""
    for candidate in (os.path.join(script_dir, name + ".py"), os.path.join(script_dir, name)):
        if os.path.isfile(candidate) or os.path.isfile(os.path.join(candidate, "__init__.py")):
            return candidate
    return ""


class _Collector:
    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.module = sys.modules.get(fn.__module__)
        self.file = inspect.getsourcefile(fn) or ""
        self.where = f"{os.path.basename(self.file)}: {fn.__name__}()"
        try:
            with open(self.file, encoding="utf-8") as f:
                self.tree = ast.parse(f.read())
        except (OSError, SyntaxError) as err:
            raise AgentNotPortable(
                f"{self.where}: its module's source cannot be read ({err})",
                "AGENT_NOT_PORTABLE",
                "define the agent function in a .py file and run that file",
            ) from err
        self.imports: Dict[str, ast.stmt] = {}
        for node in _top_imports(self.tree):
            for name in _bound_names(node):
                self.imports[name] = node
        self.used_imports: List[ast.stmt] = []
        self.constants: Dict[str, Any] = {}
        self.definitions: Dict[str, Any] = {}
        self.local_modules: Set[str] = set()

    def fail(self, what: str, fix: str) -> None:
        raise AgentNotPortable(f"{self.where}: {what}", "AGENT_NOT_PORTABLE", fix)

    def visit(self, fn: Any) -> None:
        globals_ = fn.__globals__
        for name in sorted(_global_loads(fn.__code__)):
            if name in self.definitions or name in self.constants or name == self.fn.__name__:
                continue
            if name in self.imports:
                node = self.imports[name]
                root = _root_module(node)
                if root in HOST_ONLY:
                    self.fail(
                        f"uses {name}, which comes from {root}: the front end runs on the host, not in the sandbox",
                        "call run_agent from the script's __main__ block, not from inside the agent",
                    )
                if isinstance(node, ast.ImportFrom) and node.level:
                    self.fail(f"uses {name} from a relative import", "import it absolutely (import helpers), beside the script")
                local = _local_module_path(root, os.path.dirname(self.file))
                if local:
                    self.local_modules.add(local)
                if node not in self.used_imports:
                    self.used_imports.append(node)
            elif name not in globals_:
                continue  # a builtin, or a name the code sets itself
            elif isinstance(globals_[name], types.ModuleType):
                self.fail(f"uses module {name}, imported somewhere this front end cannot see", f"import {name} at the top of the script")
            elif inspect.isfunction(globals_[name]) or inspect.isclass(globals_[name]):
                value = globals_[name]
                if getattr(value, "__module__", None) != self.fn.__module__:
                    self.fail(f"uses {name}, defined in another module without an import line", f"import {name} at the top of the script")
                self.definitions[name] = value
                if inspect.isfunction(value):
                    self.visit(value)
                else:
                    for member in vars(value).values():
                        if inspect.isfunction(member):
                            self.visit(member)
            elif _constant(globals_[name]):
                self.constants[name] = globals_[name]
            else:
                self.fail(
                    f"uses the global {name} (a {type(globals_[name]).__name__}), which cannot travel into the sandbox",
                    f"create {name} inside the agent function, or make it a constant (a str, number, list or dict)",
                )


def _function_source(fn: Any, where: str) -> str:
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as err:
        raise AgentNotPortable(f"{where}: its source cannot be read ({err})", "AGENT_NOT_PORTABLE", "define it with def in a .py file") from err
    if source.lstrip().startswith("@"):
        raise AgentNotPortable(
            f"{where} is decorated; the decorator would not exist in the sandbox",
            "AGENT_NOT_PORTABLE",
            "give run_agent an undecorated function (call the decorated one from it, defined inside it)",
        )
    return source


def write_agent_file(fn: Any, folder: str) -> Tuple[str, str]:
    """Write `fn` and what it needs into `folder`; returns the agent file and the agent's name."""
    if not inspect.isfunction(fn):
        raise AgentNotPortable(
            f"agent={fn!r} is not a function or a path", "AGENT_NOT_PORTABLE", "pass a function defined with def, or the path of a .py file"
        )
    where = f"{fn.__name__}()"
    if fn.__name__ == "<lambda>":
        raise AgentNotPortable("agent is a lambda, whose source cannot travel alone", "AGENT_NOT_PORTABLE", "define the agent with def")
    required = [p.name for p in inspect.signature(fn).parameters.values() if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if required:
        raise AgentNotPortable(f"{where} takes {', '.join(required)}; the SDK calls the agent with no arguments", "AGENT_NOT_PORTABLE", "give the parameters defaults, or read them from the environment")
    collector = _Collector(fn)
    for cell_name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
        value = cell.cell_contents
        if not _constant(value):
            collector.fail(
                f"is a closure over {cell_name} (a {type(value).__name__}), which cannot travel into the sandbox",
                f"define the agent at the top level of the module, and create {cell_name} inside it",
            )
        collector.constants[cell_name] = value
    collector.visit(fn)

    parts = [
        f"# Written by airlock's Isolated Agents SDK front end from {os.path.basename(collector.file)}: "
        f"{fn.__name__}() and what it uses.",
    ]
    parts += [ast.unparse(node) if hasattr(ast, "unparse") else _segment(collector, node) for node in collector.used_imports]
    parts += [f"{name} = {value!r}" for name, value in sorted(collector.constants.items())]
    for value in collector.definitions.values():
        parts.append(_function_source(value, f"{value.__name__}"))
    parts.append(_function_source(fn, where))
    call = "asyncio.run(_sdk.run_function(" if inspect.iscoroutinefunction(fn) else "_sdk.run_function("
    parts.append(
        "if __name__ == '__main__':\n"
        + ("    import asyncio\n" if inspect.iscoroutinefunction(fn) else "")
        + "    from airlock import _sdk\n"
        + f"    {call}{fn.__name__}){')' if inspect.iscoroutinefunction(fn) else ''}\n"
    )
    for local in collector.local_modules:
        target = os.path.join(folder, os.path.basename(local))
        if os.path.isdir(local):
            shutil.copytree(local, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True)
        else:
            shutil.copy2(local, target)
    path = os.path.join(folder, f"{fn.__name__}.py")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n\n".join(parts))
    return path, fn.__name__


def _segment(collector: _Collector, node: ast.stmt) -> str:
    with open(collector.file, encoding="utf-8") as f:
        return ast.get_source_segment(f.read(), node) or ""


def stage_script(path: str, folder: str) -> Tuple[str, str]:
    """An agent given as a path: the script and the .py modules and packages beside it, and an entry
    that meets the SDK's conventions before it runs the script as __main__."""
    script = os.path.abspath(path)
    if not os.path.isfile(script) or not script.endswith(".py"):
        raise AgentNotPortable(f"agent={path!r}: not a .py file", "AGENT_NOT_PORTABLE", "pass the path of a Python script, or a function")
    source_dir = os.path.dirname(script)
    for entry in os.listdir(source_dir):
        full = os.path.join(source_dir, entry)
        if entry.endswith(".py") and os.path.isfile(full):
            shutil.copy2(full, os.path.join(folder, entry))
        elif os.path.isfile(os.path.join(full, "__init__.py")) and not entry.startswith("."):
            shutil.copytree(full, os.path.join(folder, entry), ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    name = os.path.splitext(os.path.basename(script))[0]
    entry_file = os.path.join(folder, "_airlock_sdk_entry.py")
    with open(entry_file, "w", encoding="utf-8") as f:
        f.write(
            "# Written by airlock's Isolated Agents SDK front end: runs the script as __main__.\n"
            "import os\n"
            "from airlock import _sdk\n"
            f"_sdk.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), {os.path.basename(script)!r}))\n"
        )
    return entry_file, name
