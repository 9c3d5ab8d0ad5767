"""The import graph: library modules never import a command script, and no import cycle exists."""
import ast

from conftest import ROOT

# Command scripts: what a user runs. Libraries and benchmarks may not import them (tests may, and
# quickstart.py, which chains them as README's first command does).
COMMANDS = {"data_prep", "train", "evaluate", "separate", "app", "export", "quickstart"}
CHAINS_COMMANDS = {"quickstart"}


def _imports(path):
    """Top-level project modules a file imports (at any depth in the file)."""
    local = {p.stem for p in ROOT.glob("*.py")}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & local


def test_no_module_imports_a_command_script():
    offenders = []
    for path in sorted(ROOT.glob("*.py")) + sorted((ROOT / "bench").glob("*.py")):
        if path.parent == ROOT and path.stem in CHAINS_COMMANDS:
            continue
        bad = _imports(path) & (COMMANDS - {path.stem})
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders, offenders


def test_no_import_cycles():
    graph = {p.stem: _imports(p) - {p.stem} for p in ROOT.glob("*.py")}
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in graph.get(node, ()):
            if state.get(nxt) == "open":
                raise AssertionError(" -> ".join(stack + [node, nxt]))
            if nxt not in state:
                visit(nxt, stack + [node])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [])
