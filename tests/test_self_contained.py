"""The repository stands on its own: no Python file under eventpipe/, tests/ or bench/ names a
path outside the checkout, and no docstring or comment sends the reader to a document that is
not in it.

The check is static (it reads the sources, it does not run them) and looks for:

- paths built from `__file__` (`Path(__file__).parents[N]`, `.parent`, `/ ".."`,
  `os.path.dirname`, `os.path.join`), followed through assignments and imports between the
  scanned modules, that climb above the repository root;
- relative path literals given to `Path()`, `open()` and the `os`/`glob`/`shutil` functions
  that climb out (`"../x"`, tests run from the repository root);
- absolute path literals in those calls, except the system's own files (`/dev`, `/proc`,
  `/sys`) and the service-account mount Kubernetes gives every pod;
- anywhere in a string or comment: home or work folders of a machine (`/root/`, `/home/`, ...)
  and the names of documents kept outside the repository.

The first tests prove the checker flags each of these on small snippets.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("eventpipe", "tests", "bench")
THIS_FILE = "tests/test_self_contained.py"  # its snippets hold the very strings it looks for

MACHINE_PATHS = re.compile(r"/work/|/root/|/home/|/Users/|/mnt/|shared/corpus|\.\./shared")
OUTSIDE_DOCUMENTS = re.compile(r"\b(?:DESIGN|STYLE)(?:\.md)?\b")
ALLOWED_ABSOLUTE = ("/dev/", "/proc/", "/sys/", "/var/run/secrets/kubernetes.io/")
PATH_CONSTRUCTORS = {"Path", "PurePath", "PosixPath", "PurePosixPath"}
FILE_MODULES = {"os", "os.path", "glob", "shutil"}
SAME_PLACE = {"resolve", "absolute", "with_name", "with_suffix", "with_stem"}


@dataclass
class _Module:
    """One source file: its scope of path-valued and string-valued names."""

    path: str
    tree: ast.Module
    depths: dict[str, int] = field(default_factory=dict)  # name -> levels below the root
    strings: dict[str, str] = field(default_factory=dict)
    modules: dict[str, str] = field(default_factory=dict)  # import alias -> module name
    done: bool = False


class Checker:
    """Findings (`path:line: what`) for a set of sources, keyed by path from the root."""

    def __init__(self, sources: dict[str, str]) -> None:
        self.modules = {path: _Module(path, ast.parse(text)) for path, text in sources.items()}
        self.by_name = {_module_name(path): path for path in sources}
        self.sources = sources
        self.findings: set[str] = set()

    def run(self) -> list[str]:
        """Check every source; the findings, sorted."""
        for path, module in self.modules.items():
            self._scope(module)
            for node in ast.walk(module.tree):
                if isinstance(node, ast.expr):
                    self._depth(module, node)
                if isinstance(node, ast.Call):
                    self._file_call(module, node)
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    self._text(path, node.lineno, node.value)
            for token in tokenize.generate_tokens(io.StringIO(self.sources[path]).readline):
                if token.type == tokenize.COMMENT:
                    self._text(path, token.start[0], token.string)
        return sorted(self.findings)

    def _flag(self, module: _Module, node: ast.AST, what: str) -> None:
        self.findings.add(f"{module.path}:{getattr(node, 'lineno', 0)}: {what}")

    def _text(self, path: str, line: int, text: str) -> None:
        for pattern, what in ((MACHINE_PATHS, "a machine's folder"),
                              (OUTSIDE_DOCUMENTS, "a document outside the repository")):
            if match := pattern.search(text):
                at = line + text.count("\n", 0, match.start())  # the line in a long docstring
                self.findings.add(f"{path}:{at}: {what}: {match.group(0)!r}")

    def _scope(self, module: _Module) -> None:
        """Names bound to locations or strings, and imported from scanned modules, in order."""
        if module.done:
            return
        module.done = True
        nodes = [n for n in ast.walk(module.tree)
                 if isinstance(n, ast.Assign | ast.AnnAssign | ast.Import | ast.ImportFrom)]
        for node in sorted(nodes, key=lambda n: n.lineno):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    module.modules[alias.asname or alias.name] = alias.name
            elif isinstance(node, ast.ImportFrom):
                self._import_from(module, node)
            elif node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        self._bind(module, target.id, node.value)

    def _import_from(self, module: _Module, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            package = _module_name(module.path).split(".")
            keep = len(package) - node.level + (module.path.endswith("__init__.py"))
            base = ".".join([*package[:keep], *([base] if base else [])])
        for alias in node.names:
            name = alias.asname or alias.name
            source = self.by_name.get(base)
            if source is None:
                continue
            other = self.modules[source]
            self._scope(other)
            if alias.name in other.depths:
                module.depths[name] = other.depths[alias.name]
            if alias.name in other.strings:
                module.strings[name] = other.strings[alias.name]

    def _bind(self, module: _Module, name: str, value: ast.expr) -> None:
        depth = self._depth(module, value)
        if depth is not None:
            module.depths[name] = depth
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            module.strings[name] = value.value

    def _depth(self, module: _Module, node: ast.expr) -> int | None:
        """How many levels below the repository root `node` points (None: not a path);
        flags the node when that is above the root."""
        depth = self._evaluate(module, node)
        if depth is not None and depth < 0:
            self._flag(module, node, f"path {-depth} level(s) above the repository root")
        return depth

    def _evaluate(self, module: _Module, node: ast.expr) -> int | None:
        if isinstance(node, ast.Name):
            if node.id == "__file__":
                return len(Path(module.path).parts)
            return module.depths.get(node.id)
        if isinstance(node, ast.Attribute):
            owner = _dotted(node.value)
            if owner in module.modules:
                source = self.by_name.get(module.modules[owner])
                if source is None:
                    return None
                self._scope(self.modules[source])
                return self.modules[source].depths.get(node.attr)
            if node.attr == "parent":
                return _minus(self._depth(module, node.value), 1)
            return None
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute):
            index = node.slice
            if node.value.attr == "parents" and isinstance(index, ast.Constant) \
                    and isinstance(index.value, int):
                return _minus(self._depth(module, node.value.value), index.value + 1)
            return None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            return self._join(module, self._depth(module, node.left), [node.right])
        if isinstance(node, ast.Call):
            return self._call(module, node)
        return None

    def _call(self, module: _Module, node: ast.Call) -> int | None:
        name = _dotted(node.func)
        short = name.rsplit(".", 1)[-1]
        if short in PATH_CONSTRUCTORS:
            if not node.args:
                return 0
            return self._join(module, self._start(module, node.args[0]), node.args[1:])
        if name in ("Path.cwd", "os.getcwd"):
            return 0
        if name == "os.path.join" and node.args:
            return self._join(module, self._start(module, node.args[0]), node.args[1:])
        if name == "os.path.dirname" and node.args:
            return _minus(self._depth(module, node.args[0]), 1)
        if name in ("os.path.abspath", "os.path.realpath", "os.path.normpath") and node.args:
            return self._depth(module, node.args[0])
        if isinstance(node.func, ast.Attribute) and name not in self.by_name:
            if node.func.attr in SAME_PLACE:
                return self._depth(module, node.func.value)
            if node.func.attr == "joinpath":
                return self._join(module, self._depth(module, node.func.value), node.args)
        return None

    def _start(self, module: _Module, node: ast.expr) -> int | None:
        """The location of a path's first part: a location, or a relative string from the root."""
        text = self._string(module, node)
        if text is None:
            return self._depth(module, node)
        return None if text.startswith("/") else self._join(module, 0, [node])

    def _join(self, module: _Module, depth: int | None, parts: list[ast.expr]) -> int | None:
        for part in parts:
            if depth is None:
                return None
            text = self._string(module, part)
            if text is None:
                depth += 1  # a name not known here: assume it goes down one level
                continue
            if text.startswith("/"):
                return None  # an absolute part replaces the path; `_file_call` judges those
            for segment in text.split("/"):
                depth += {"": 0, ".": 0, "..": -1}.get(segment, 1)
                if depth < 0:
                    self._flag(module, part, f"{text!r} climbs above the repository root")
                    return None
        return depth

    def _string(self, module: _Module, node: ast.expr) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return module.strings.get(node.id)
        if isinstance(node, ast.JoinedStr) and node.values:
            head = node.values[0]  # an f-string: its literal start decides where it points
            if isinstance(head, ast.Constant) and isinstance(head.value, str):
                return head.value + "x"
        return None

    def _file_call(self, module: _Module, node: ast.Call) -> None:
        """Absolute literals given to path constructors, `open` or the file modules."""
        name = _dotted(node.func)
        owner, _, short = name.rpartition(".")
        if short not in PATH_CONSTRUCTORS and short != "open" and owner not in FILE_MODULES:
            return
        for arg in node.args:
            text = self._string(module, arg)
            if text and text.startswith("/") and not text.startswith(ALLOWED_ABSOLUTE):
                self._flag(module, arg, f"absolute path {text!r}")
            elif text and not text.startswith("/"):
                self._join(module, 0, [arg])


def _minus(depth: int | None, levels: int) -> int | None:
    return None if depth is None else depth - levels


def _dotted(node: ast.expr) -> str:
    """`a.b.c` for a chain of names, else ""."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        owner = _dotted(node.value)
        return f"{owner}.{node.attr}" if owner else ""
    return ""


def _module_name(path: str) -> str:
    parts = list(Path(path).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def check(sources: dict[str, str]) -> list[str]:
    """What `sources` (path from the repository root -> text) name outside the repository."""
    return Checker(sources).run()


# ---- the checker catches what it must, and leaves alone what is fine ------------------------


def test_flags_climbing_from_file_with_parents() -> None:
    snippet = 'from pathlib import Path\nC = Path(__file__).resolve().parents[2] / "shared"\n'
    assert check({"tests/test_x.py": snippet}) == [
        "tests/test_x.py:2: path 1 level(s) above the repository root"]
    assert check({"tests/fakeapi/corpus.py": snippet}) == []  # parents[2] is the root there


def test_flags_climbing_through_names_and_imports() -> None:
    harness = "from pathlib import Path\nREPO = Path(__file__).resolve().parent.parent\n"
    user = ("from tests.harness import REPO\nimport tests.harness as h\n"
            'CORPUS = REPO.parent / "shared" / "corpus"\nOTHER = h.REPO / ".." / "x"\n')
    assert check({"tests/harness.py": harness, "tests/test_y.py": user}) == [
        "tests/test_y.py:3: path 1 level(s) above the repository root",
        "tests/test_y.py:4: '..' climbs above the repository root"]


def test_flags_os_path_and_relative_literals() -> None:
    snippet = ("import os\nD = os.path.join(os.path.dirname(__file__), '..', '..', 'x')\n"
               "open('../elsewhere/events.jsonl')\nE = os.path.dirname(os.path.dirname(D))\n")
    assert check({"bench/b.py": snippet}) == [
        "bench/b.py:2: '..' climbs above the repository root",
        "bench/b.py:3: '../elsewhere/events.jsonl' climbs above the repository root"]


def test_flags_absolute_paths_machine_folders_and_outside_documents() -> None:
    snippet = ('from pathlib import Path\nA = Path("/srv/data/events.jsonl")\n'
               'B = open(f"/opt/{1}/x")\nC = "see /root/notes"  # the layout of DESIGN §3\n'
               '"""Read ../shared/corpus first (STYLE.md)."""\n')
    assert check({"eventpipe/m.py": snippet}) == [
        "eventpipe/m.py:2: absolute path '/srv/data/events.jsonl'",
        "eventpipe/m.py:3: absolute path '/opt/x'",
        "eventpipe/m.py:4: a document outside the repository: 'DESIGN'",
        "eventpipe/m.py:4: a machine's folder: '/root/'",
        "eventpipe/m.py:5: a document outside the repository: 'STYLE.md'",
        "eventpipe/m.py:5: a machine's folder: '../shared'"]


def test_leaves_paths_inside_the_repository_and_system_files_alone() -> None:
    snippet = ("import os, tempfile\nfrom pathlib import Path\n"
               'R = Path(__file__).resolve().parents[1]\nC = R / "tests" / "corpus" / ".."\n'
               'open("/dev/null")\nPath(f"/proc/{os.getpid()}/status").read_text()\n'
               'URL = "/api/v1/events"\nT = Path(tempfile.mkdtemp()) / ".." / ".."\n'
               'K = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")\n')
    assert check({"tests/t.py": snippet}) == []


# ---- the repository ------------------------------------------------------------------------


def test_no_source_names_a_path_outside_the_repository() -> None:
    sources = {path.relative_to(REPO).as_posix(): path.read_text(encoding="utf-8")
               for top in SCANNED for path in sorted((REPO / top).rglob("*.py"))}
    sources.pop(THIS_FILE)
    assert len(sources) > 100  # the scan really read the trees
    assert check(sources) == []
