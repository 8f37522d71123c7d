"""The package's structure: no import cycles, and each layer imports only the layers below it (docs/design.md).

Every import statement counts, module level or deferred inside a function: a deferred import still makes the two
modules depend on each other, it only hides the knot until run time.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tfnets", "apps", "benchmarks")
# Lowest first; a module may import its own layer and the layers before it. `__main__` modules are commands: they
# sit on top and may import anything.
LAYERS = (
    ("tfnets", "tfnets.errors", "tfnets.atomic"),
    ("tfnets.nn",),
    ("tfnets.data",),
    ("tfnets.experiment",),
    ("tfnets.check",),
    ("apps",),
    ("benchmarks",),
)


def modules(root=ROOT):
    """`{dotted name: path}` of every module of the project's packages."""
    found = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name, path, known):
    """The project modules `name` imports, anywhere in its code."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` the module mod.
            targets.update(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names)
    found = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)
    return found


def graph(root=ROOT):
    known = modules(root)
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(edges):
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], 0
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def layer(name):
    """The index in `LAYERS` of the longest prefix that holds `name`."""
    best = None
    for position, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if name == prefix or name.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (position, len(prefix))
    assert best is not None, f"{name} is in no layer: add it to LAYERS (and to docs/design.md)"
    return best[0]


def upward(edges):
    return sorted(
        f"{name} imports {target}"
        for name, targets in edges.items()
        if not name.endswith("__main__")
        for target in targets
        if layer(target) > layer(name)
    )


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_each_layer_imports_only_the_layers_below_it():
    assert upward(graph()) == []


def test_the_checks_can_fail(tmp_path):
    # A package whose lowest layer imports back into a higher one, deferred inside a function: both rules see it.
    (tmp_path / "tfnets" / "nn").mkdir(parents=True)
    (tmp_path / "tfnets" / "__init__.py").write_text("")
    (tmp_path / "tfnets" / "nn" / "__init__.py").write_text("")
    (tmp_path / "tfnets" / "nn" / "a.py").write_text("def f():\n    from tfnets.experiment import b\n")
    (tmp_path / "tfnets" / "experiment").mkdir()
    (tmp_path / "tfnets" / "experiment" / "__init__.py").write_text("")
    (tmp_path / "tfnets" / "experiment" / "b.py").write_text("from tfnets.nn import a\n")
    for package in ("apps", "benchmarks"):
        (tmp_path / package).mkdir()
    edges = graph(tmp_path)
    assert cycles(edges) == [["tfnets.experiment.b", "tfnets.nn.a"]]
    assert upward(edges) == ["tfnets.nn.a imports tfnets.experiment.b"]
