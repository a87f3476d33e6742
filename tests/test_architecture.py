"""The package's wiring, checked on every run rather than by hand:

- no import cycles between aecodec's modules (static imports, at any depth);
- no private names used across modules (``from .x import _y``, ``obj._y`` on
  anything but ``self``/``cls``/the module's own classes, ``Class._y``);
- ``import aecodec`` and ``aecodec --help`` load no torch.
"""
import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "aecodec"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    base = module.split(".")
    if level:
        base = base if is_package else base[:-1]
        base = base[:len(base) - (level - 1)]
        return ".".join(base + ([name] if name else []))
    return name or ""


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the aecodec modules it imports (at module level or inside functions)."""
    graph = {}
    for mod, path in modules.items():
        is_package = path.name == "__init__.py"
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(mod, is_package, node.level, node.module)
                targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target
                           for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t.startswith("aecodec") and t != mod:
                    deps.add(t)
        graph[mod] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for dep in graph[node]:
            # a package importing its own submodules, or a submodule its package's
            # __init__ (which Python has already run), is not a cycle between rooms
            if dep.startswith(node + ".") or node.startswith(dep + "."):
                continue
            if state.get(dep) == 1:
                found.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_no_import_cycles():
    assert _cycles(_imports(_modules())) == []


def test_no_private_names_across_modules():
    offences = []
    for mod, path in _modules().items():
        tree = ast.parse(path.read_text())
        own_classes = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                offences += [f"{mod}: imports {a.name} from {node.module}" for a in node.names
                             if a.name.startswith("_") and not a.name.startswith("__") and node.level]
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                    and not node.attr.startswith("__"):
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in {"self", "cls", "super"} | own_classes:
                    continue
                if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
                    continue
                offences.append(f"{mod}:{node.lineno}: .{node.attr} on {ast.unparse(owner)}")
    allowed = {
        # third-party private API with no public equivalent, used deliberately
        ".__getattr__", "._exclusive_fp", "._processes", "._mode", "._size",
    }
    offences = [o for o in offences if not any(o.split(": ")[-1].startswith(a) for a in allowed)]
    assert offences == []


def test_import_and_help_load_no_torch():
    code = ("import sys, aecodec, aecodec.cli, aecodec.pillow_plugin, aecodec.inspect; "
            "from click.testing import CliRunner; r = CliRunner().invoke(aecodec.cli.main, ['--help']); "
            "assert r.exit_code == 0, r.output; r = CliRunner().invoke(aecodec.cli.main, ['compress', '--help']); "
            "assert r.exit_code == 0, r.output; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'safetensors')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
