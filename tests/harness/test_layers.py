"""The harness's package layers (scripts/cbenchlib), checked from the source:

    format  <-  plan  <-  run
    format  <-  analysis  <-  render
    cmd (one module per verb) on top of all

A module may import its own package and the packages below it, never one above or beside it,
only at module level (an import inside a function that dodges a cycle is still the cycle), and
the imports between modules form no cycle. Also the size rules that keep each module readable:
no module over 500 lines, no function over 80.
"""
import ast
import os
import unittest

import common  # noqa: F401  (puts scripts/ on sys.path)

LIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "cbenchlib")
ALLOWED = {
    "format": {"format"},
    "plan": {"format", "plan"},
    "run": {"format", "plan", "run"},
    "analysis": {"format", "analysis"},
    "render": {"format", "analysis", "render"},
    "cmd": {"format", "plan", "run", "analysis", "render", "cmd"},
}
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def imports_of(pkg: str, source: str) -> list[tuple[int, str, bool]]:
    """(line, 'package.module' or 'package', at module level) of every cbenchlib import in SOURCE,
    a module of package PKG."""
    tree = ast.parse(source)
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if not (node.module or "").startswith("cbenchlib"):
                    continue
                parts = node.module.split(".")[1:]
            elif node.level == 1:
                parts = [pkg] + ((node.module or "").split(".") if node.module else [])
            else:
                parts = (node.module or "").split(".")
            targets = [".".join(parts[:2])] if len(parts) >= 2 else [f"{parts[0]}.{a.name}" for a in node.names]
            out += [(node.lineno, t, id(node) in top) for t in targets]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, ".".join(a.name.split(".")[1:3]), id(node) in top)
                    for a in node.names if a.name.startswith("cbenchlib.")]
    return out


def violations(sources: dict[str, str]) -> list[str]:
    """Every broken rule in SOURCES ({'package/module.py': text}), one line each; empty when clean."""
    out = []
    graph: dict[str, set[str]] = {}
    for rel, text in sorted(sources.items()):
        pkg, name = rel.split("/")
        mod = f"{pkg}.{name[:-3]}"
        graph.setdefault(mod, set())
        if pkg not in ALLOWED:
            out.append(f"{rel}: not in a declared layer")
            continue
        for line, target, at_top in imports_of(pkg, text):
            tpkg = target.split(".")[0]
            if not at_top:
                out.append(f"{rel}:{line}: imports {target} inside a function")
            if tpkg not in ALLOWED[pkg]:
                out.append(f"{rel}:{line}: {pkg} may not import {tpkg} ({target})")
            if target in {f"{p}.{m[:-3]}" for p, m in (k.split("/") for k in sources)}:
                graph[mod].add(target)
    out += [f"import cycle: {' -> '.join(c)}" for c in cycles(graph)]
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected part of GRAPH with more than one module (or a self-import)."""
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for n in sorted(graph):
        if n not in state:
            visit(n, [])
    return found


def size_problems(sources: dict[str, str]) -> list[str]:
    out = []
    for rel, text in sorted(sources.items()):
        n = text.count("\n")
        if n > MAX_MODULE_LINES:
            out.append(f"{rel}: {n} lines (at most {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    out.append(f"{rel}:{node.lineno}: {node.name} is {length} lines (at most {MAX_FUNCTION_LINES})")
    return out


def read_tree() -> dict[str, str]:
    out = {}
    for pkg in sorted(os.listdir(LIB)):
        d = os.path.join(LIB, pkg)
        if os.path.isdir(d) and pkg != "__pycache__":
            for f in sorted(os.listdir(d)):
                if f.endswith(".py"):
                    with open(os.path.join(d, f), encoding="utf-8") as fh:
                        out[f"{pkg}/{f}"] = fh.read()
    return out


class Layers(unittest.TestCase):
    def test_the_tree_keeps_its_layers(self):
        self.assertEqual(violations(read_tree()), [])

    def test_no_flat_modules_left(self):
        flat = [f for f in os.listdir(LIB) if f.endswith(".py") and f != "__init__.py"]
        self.assertEqual(flat, [], "every module belongs to a package by job")

    def test_the_rule_catches_what_it_should(self):
        # (label, the tree's sources, a fragment the violations must contain; None: clean)
        cases = [
            ("downward import", {"render/a.py": "from ..analysis import b\n", "analysis/b.py": ""}, None),
            ("upward import", {"format/a.py": "from ..run import b\n", "run/b.py": ""}, "format may not import run"),
            ("sideways import", {"analysis/a.py": "from ..run import b\n", "run/b.py": ""}, "analysis may not import run"),
            ("absolute upward", {"format/a.py": "from cbenchlib.render import b\n", "render/b.py": ""},
             "format may not import render"),
            ("inside a function", {"run/a.py": "def f():\n    from . import b\n", "run/b.py": ""}, "inside a function"),
            ("cycle in a layer", {"run/a.py": "from . import b\n", "run/b.py": "from .a import x\n"}, "import cycle"),
            ("undeclared package", {"misc/a.py": ""}, "not in a declared layer"),
        ]
        for label, sources, want in cases:
            with self.subTest(label):
                got = violations(sources)
                if want is None:
                    self.assertEqual(got, [])
                else:
                    self.assertTrue(any(want in g for g in got), got)

    def test_modules_and_functions_stay_small(self):
        self.assertEqual(size_problems(read_tree()), [])


if __name__ == "__main__":
    unittest.main()
