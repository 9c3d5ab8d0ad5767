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


def test_bench_never_puts_its_folder_before_the_scripts():
    """bench/train.py and bench/separate.py share the scripts' names: a bench module (or test) that puts
    bench/ first on sys.path makes a later `import train` in the same process load the benchmark
    (seen: main() takes 0 positional arguments, in whichever tests ran after test_collapse)."""
    shadowed = {p.stem for p in (ROOT / "bench").glob("*.py")} & {p.stem for p in ROOT.glob("*.py")}
    assert {"train", "separate"} <= shadowed
    offenders = []
    for path in sorted((ROOT / "bench").glob("*.py")) + sorted((ROOT / "tests").glob("*.py")):
        if path.name == "test_layout.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if "sys.path.insert(0" in code and ("bench" in code or "resolve().parent)" in code):
                offenders.append(f"{path.relative_to(ROOT)}:{number}")
    assert not offenders, offenders
