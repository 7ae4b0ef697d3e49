"""The parts of the grader's own kernel, without a kernel, an engine or a cluster: what a test
reads and where each name comes from (``rerun.handover``), answers as plain data, the student's
functions at arm's length in a process of their own (``arm.py``, a real process), and the scan
for answers that reach for the grading (``tampering.py``)."""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import json
import os
import shutil
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from helpers._grading import answers, arm, rerun, sources, tampering

REPO = Path(__file__).resolve().parent.parent
SETUP = 'import helpers\nfrom helpers import check, k8s\nme = helpers.setup("x")\nns = "ns"\n'


def _answer(source: str, grade_id: str = "answer") -> dict[str, Any]:
    meta = {"grade": False, "grade_id": grade_id, "solution": True, "locked": False}
    return {"cell_type": "code", "metadata": {"nbgrader": meta}, "source": source}


def _plain_cell(source: str) -> dict[str, Any]:
    return {"cell_type": "code", "metadata": {}, "source": source}


def _test_cell(grade_id: str, source: str = "") -> dict[str, Any]:
    meta = {"grade": True, "grade_id": grade_id, "solution": False, "points": 1}
    return {"cell_type": "code", "metadata": {"nbgrader": meta}, "source": source}


def _plan(trusted: tuple[str, ...] = (), tests: dict[str, str] | None = None) -> dict[str, Any]:
    tests = tests or {}
    return {"setup": SETUP, "cells": dict(tests), "tests": dict(tests), "trusted": list(trusted)}


def _handover(test: str, *cells: dict[str, Any], **plan: Any) -> rerun.Handover:
    return rerun.handover(test, SETUP, list(cells), _plan(**plan))


def _program(hand: rerun.Handover) -> str:
    return "\n".join(part["code"] for part in hand.program)


# --- where each name a test reads comes from ----------------------------------------------------


def test_a_function_comes_from_the_answer_cells_source_with_what_it_needs() -> None:
    hand = _handover(
        "check.equal(list_pod_names(ns), ['probe'], what='x')\nprint(answer)",
        _answer("import json as j\nPATH = '/api/v1'\nanswer = 3"),
        _answer(
            "def helper(ns):\n    return j.loads(j.dumps(PATH + ns))\n\n"
            "def list_pod_names(namespace):\n    return [helper(namespace), k8s.request]\n",
            "answer_list",
        ),
    )
    assert hand.functions == {
        "list_pod_names": "def list_pod_names(namespace):\n    return [helper(namespace), k8s.request]\n"
    }
    assert hand.data == ["answer"], "a value the test reads travels as data"
    assert hand.needs == ["PATH"], "the plain global the function reads; k8s is the setup's"
    program = _program(hand)
    assert "import json as j" in program and "def helper(ns)" in program
    assert program.index("def helper") < program.index("def list_pod_names")
    assert "answer = 3" not in program, "only definitions run in the function's process"


def test_the_last_definition_before_the_test_wins() -> None:
    first = _answer("def f():\n    return 1\n", "a")
    second = _answer("def f():\n    return 2\n", "b")
    assert "return 2" in _handover("f()", first, second).functions["f"]
    assert "return 1" in _handover("f()", second, first).functions["f"]
    # A definition after the test is not among the cells before it.
    assert "return 1" in _handover("f()", first).functions["f"]
    # Rebound to data after the def: it is data (and must be plain to travel).
    rebound = _handover("f()", first, _answer("f = 3", "c"))
    assert rebound.functions == {} and rebound.data == ["f"]


def test_functions_inside_if_lambdas_aliases_and_decorators() -> None:
    hand = _handover(
        "a(); b(); c(); d()",
        _answer(
            "import functools\nUSE = True\n"
            "if USE:\n    def a():\n        return 'yes'\n    k8s.apply({}, ns)\n"
            "else:\n    def a():\n        return 'no'\n"
            "b = lambda: 2\n"
            "def _c():\n    return 3\nc = _c\n"
            "@functools.lru_cache\ndef d():\n    return 4\n"
        ),
    )
    assert sorted(hand.functions) == ["a", "b", "c", "d"]
    program = _program(hand)
    assert "if USE:" in program and "return 'no'" in program, "the if stays, with both branches"
    assert "k8s.apply" not in program, "only definitions are kept inside the if"
    assert "USE" in hand.needs
    assert hand.functions["b"].strip() == "b = lambda: 2"
    assert hand.functions["d"].startswith("@functools.lru_cache\ndef d():")
    assert "import functools" in program and "def _c" in program and "c = _c" in program


def test_the_instructors_definitions_the_test_uses_are_the_instructors() -> None:
    """A helper the notebook's first cell defines (04's app) runs in the grader's kernel from
    the source in solutions/, however the student's notebook has it: as it is, edited, or
    redefined in an answer cell. The student's own functions that use it get theirs."""
    setup_cell = "import time\n\ndef app(name):\n    return {'name': name}\nWEB_PORT = 8080\n"
    test = (
        "time.sleep(0)\ncheck.equal(app('x'), {'name': 'x'}, what='app')\nprint(WEB_PORT, mine())"
    )
    edited = setup_cell.replace("'name': name", "'name': 'x'")
    mine = "def mine():\n    return app('y')\n"
    cases = {
        "return {'name': name}": [_plain_cell(setup_cell), _answer(mine)],
        "return {'name': 'x'}": [_plain_cell(edited), _answer(mine)],
        "return {}": [_plain_cell(setup_cell), _answer("def app(name):\n    return {}\n\n" + mine)],
    }
    for theirs, cells in cases.items():
        hand = _handover(test, *cells, trusted=(setup_cell,))
        assert list(hand.functions) == ["mine"], hand.functions
        assert hand.trusted == ["import time", "def app(name):\n    return {'name': name}"]
        assert hand.data == ["WEB_PORT"], "the setup cell's values come from the student's kernel"
        program = _program(hand)
        assert program.count("def app") == 1 and theirs in program and "def mine" in program


def test_names_an_earlier_test_set_are_in_the_graders_kernel_already() -> None:
    earlier = "batch = {'kind': 'Deployment'}\nsettings = strategy()"
    hand = _handover(
        "check.equal(batch['kind'], 'Deployment', what='x')",
        _answer("def strategy():\n    return {}"),
        _test_cell("test_shape"),
        tests={"test_shape": earlier},
    )
    assert hand.data == [] and hand.functions == {}


def test_cells_that_ran_as_ipython_and_cells_that_do_not_parse() -> None:
    hand = _handover(
        "f()",
        _answer("!echo hi\nfiles = !ls\n%time x = 1\ndef f():\n    return 1\n"),
        _answer("def f(:\n    broken", "later"),
    )
    assert "return 1" in hand.functions["f"], "a cell that does not parse binds nothing"


def test_loops_classes_and_the_tests_own_imports() -> None:
    hand = _handover(
        "import inspect\nfrom time import sleep\nprint(total, Model, g)",
        _answer("total = 0\nfor i in range(3):\n    total += i\n    def g():\n        return i\n"),
        _answer("class Model:\n    pass\n"),
    )
    assert hand.data == ["Model", "g", "total"], "a def in a loop is not run again: data"
    assert hand.imports == "import inspect\nfrom time import sleep"


def test_every_test_of_the_solutions_runs_in_the_graders_kernel_with_its_functions() -> None:
    """Every graded test cell is tagged run-by-grader, and each finds the functions it calls in
    the solution's answer cells (none of them is handed over as an object)."""
    tagged = 0
    for path in sorted((REPO / "solutions").glob("*/*.ipynb")):
        notebook = json.loads(path.read_text())
        plan = rerun.plans(path.parent)[path.stem]
        defined = {
            node.name
            for cell in notebook["cells"]
            if cell.get("metadata", {}).get("nbgrader", {}).get("solution")
            for node in ast.walk(ast.parse("".join(cell["source"])))
            if isinstance(node, ast.FunctionDef)
        }
        for index, cell in enumerate(notebook["cells"]):
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if not meta.get("grade"):
                continue
            assert rerun.is_tagged(cell), f"{path.name} {meta['grade_id']} is not run-by-grader"
            tagged += 1
            source = plan["cells"][meta["grade_id"]]
            before = notebook["cells"][:index]
            hand = rerun.handover(source, plan["setup"], before, plan, meta["grade_id"])
            called = sources.free_names(source) & defined
            assert set(hand.functions) == called, (path.name, meta["grade_id"], hand.functions)
            assert not set(hand.data) & defined, (path.name, meta["grade_id"], hand.data)
    assert tagged == 80, tagged  # 68 in chapters 01-06, 12 in 07


# --- answers as plain data ----------------------------------------------------------------------

LYING = "class Yes(str):\n    def __eq__(self, other):\n        return True\n    __hash__ = str.__hash__\n"


def _export(namespace: dict[str, Any], names: list[str]) -> answers.Exported:
    """What the student's kernel prints for the names, read back."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(answers.export_code(names), namespace)  # at the top level of the student's kernel
    outputs = [{"output_type": "stream", "name": "stdout", "text": printed.getvalue()}]
    return answers.parse_export(outputs, names)


def test_answers_travel_as_exactly_plain_data() -> None:
    space: dict[str, Any] = {}
    exec(LYING, space)
    space.update(
        total=5,
        phases={"a": "Bound", "n": [1, 2.5, None, True]},
        liar=space["Yes"]("whatever"),
        pair=(1, 2),
        keys={1: "a"},
        nan=float("nan"),
        big="x" * (answers.HANDOVER_LIMIT + 1),
    )
    names = ["total", "phases", "liar", "pair", "keys", "nan", "big", "absent"]
    exported = _export(space, names)
    assert exported.values == {"total": 5, "phases": {"a": "Bound", "n": [1, 2.5, None, True]}}
    assert exported.missing == ["absent"]
    assert exported.unplain == {
        "liar": "Yes",
        "pair": "tuple",
        "keys": "dict",
        "nan": "float",
        "big": "value too large to hand over",
    }
    fresh: dict[str, Any] = {"absent": "stale"}
    exec(answers.import_code(exported.values, exported.missing), fresh)
    assert fresh["total"] == 5 and fresh["phases"]["a"] == "Bound" and "absent" not in fresh
    assert "the grader hands over plain data only" in answers.not_plain_message("liar", "Yes")
    assert "define f with def" in answers.not_plain_message("f", "function")


def test_what_a_kernel_prints_is_read_as_data_and_only_after_the_mark() -> None:
    def stream(text: str) -> dict[str, Any]:
        return {"output_type": "stream", "name": "stdout", "text": text}

    with pytest.raises(ValueError, match="did not hand over total"):
        answers.parse_export([stream('{"values": {"total": 5}}\n')], ["total"])
    with pytest.raises(ValueError, match="could not hand over"):
        answers.parse_export([{"output_type": "error", "ename": "E", "evalue": "x"}], ["total"])
    # A kernel that prints what it likes: NaN and other names are not taken; a line split
    # over two stream messages is read whole.
    line = answers.MARK + '{"values": {"total": NaN, "other": 1, "ok": [1]}, "unplain": {}}'
    found = answers.parse_export([stream(line[:30]), stream(line[30:] + "\n")], ["total", "ok"])
    assert found.values == {"ok": [1]} and found.missing == ["total"]


# --- the student's functions, at arm's length --------------------------------------------------


@pytest.fixture
def functions(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Installs the functions of an answer cell in a namespace, as the grader's kernel does; the
    files of a pretend kernel (a connection file, a sockets folder; outside /tmp, which the
    process has a fresh one of) are to be hidden."""
    kernel = Path(tempfile.mkdtemp(prefix="course-kernel-", dir="/var/tmp"))
    (kernel / "connection.json").write_text('{"key": "secret"}')
    monkeypatch.setattr(
        arm, "_kernel_files", lambda: ([str(kernel / "connection.json")], [str(kernel)])
    )
    monkeypatch.setattr(arm, "CALL_LIMIT", 5.0)

    def install(answer: str, test: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
        hand = rerun.handover(test, "X0 = 1\n", [_answer(answer)], _plan())
        namespace: dict[str, Any] = {}
        arm.install(namespace, hand.spec("X0 = 1\n", values or {}, {"client": "Session"}))
        return namespace

    yield install, kernel
    arm.close_all()
    shutil.rmtree(kernel, ignore_errors=True)


def test_a_function_runs_in_its_own_process_and_returns_plain_data(functions: Any) -> None:
    install, _ = functions
    answer = textwrap.dedent(
        """
        import os
        def double(x):
            print("doubling", x)
            return {"double": 2 * x + SHIFT, "pid": os.getpid()}
        """
    )
    space = install(answer, "double(2)", {"SHIFT": 1})
    result = space["double"](2)
    assert result["double"] == 5 and result["pid"] != os.getpid()
    assert inspect.getsource(space["double"]) == answer.split("import os\n", 1)[1]
    assert space["double"](3)["pid"] == result["pid"], "one process serves the test's calls"


def test_a_kubeconfig_under_tmp_reaches_the_function_as_a_copy(
    functions: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process gets a /tmp of its own: a kubeconfig there (a grading outside the sandbox)
    would be gone. It travels as a copy in the process's /tmp; one elsewhere stays where it is."""
    install, _ = functions
    answer = "import os\ndef config():\n    return [os.environ['KUBECONFIG'], open(os.environ['KUBECONFIG']).read()]\n"
    with tempfile.TemporaryDirectory(prefix="course-grading-", dir="/tmp") as work:
        under_tmp = Path(work) / "0001.kubeconfig"
        under_tmp.write_text("clusters: []  # under /tmp\n")
        monkeypatch.setenv("KUBECONFIG", str(under_tmp))
        assert install(answer, "config()")["config"]() == [
            "/tmp/kubeconfig",
            "clusters: []  # under /tmp\n",
        ]
    arm.close_all()
    with tempfile.TemporaryDirectory(prefix="course-run-", dir="/var/tmp") as run:
        elsewhere = Path(run) / "kubeconfig"
        elsewhere.write_text("clusters: []  # elsewhere\n")
        monkeypatch.setenv("KUBECONFIG", str(elsewhere))
        assert install(answer, "config()")["config"]() == [
            str(elsewhere),
            "clusters: []  # elsewhere\n",
        ]
        arm.close_all()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "return (1, 2)",
            "f() must return plain data: dicts, lists, strings, numbers (it returned a tuple)",
        ),
        ("class Yes(str):\n        pass\n    return Yes('x')", "must return plain data"),
        ("return {}['items']", "f() raised KeyError: 'items'"),
        ("return client.get()", "NameError: name 'client' is not defined (it is a Session"),
        ("import time\n    time.sleep(60)", "f() did not return within 5 s"),
        ("import os\n    os._exit(3)", "ended before it answered (exit code 3)"),
    ],
)
def test_a_function_that_fails_says_why(functions: Any, body: str, message: str) -> None:
    install, _ = functions
    space = install(f"def f():\n    {body}\n", "f()")
    started = time.monotonic()
    with pytest.raises(arm.FunctionFailed) as failed:
        space["f"]()
    assert message in str(failed.value), str(failed.value)
    assert time.monotonic() - started < 20


def test_a_function_is_given_plain_arguments_only(functions: Any) -> None:
    install, _ = functions
    space = install("def f(x):\n    return x\n", "f(1)")
    assert space["f"]([1, "a"]) == [1, "a"]
    with pytest.raises(TypeError, match="plain data only"):
        space["f"](object())


def test_a_function_that_could_not_be_defined_says_so(functions: Any) -> None:
    install, _ = functions
    space = install("@undefined_decorator\ndef f():\n    return 1\n", "f()")
    with pytest.raises(arm.FunctionFailed, match="could not be defined from your answer cells"):
        space["f"]()


def _isolated() -> bool:
    """Whether this machine lets a process make user, mount and PID namespaces of its own."""
    import subprocess
    import sys

    probe = "import ctypes; exit(ctypes.CDLL(None).unshare(0x10000000 | 0x20000 | 0x20000000))"
    return subprocess.run([sys.executable, "-c", probe], check=False).returncode == 0


HOSTILE = """
import glob, os, signal, socket

def attack(grader):
    reached = []
    def attempt(name, action):
        try:
            action()
            reached.append(name)
        except Exception:
            pass
    attempt("environ", lambda: open(f"/proc/{grader}/environ", "rb").read())
    attempt("mem", lambda: open(f"/proc/{grader}/mem", "rb").close())
    attempt("signal", lambda: os.kill(grader, 0))
    attempt("pidfd", lambda: signal.pidfd_send_signal(os.open(f"/proc/{grader}", os.O_RDONLY), 0))
    attempt("connection", lambda: open(CONNECTION).read().index("secret"))
    attempt("sockets", lambda: os.listdir(KERNEL)[0])
    attempt("kill-all", lambda: os.kill(-1, signal.SIGKILL))
    import helpers.check
    helpers.check.equal = lambda *args, **kwargs: None
    return {"reached": reached, "parent": os.getppid(), "pid": os.getpid()}
"""


def test_a_function_reaches_nothing_of_the_graders_kernel(functions: Any) -> None:
    """The process is PID 1 of a namespace of its own: it cannot name the grader's processes,
    read their /proc files, see the kernel's connection file or sockets; what it replaces, it
    replaces in itself."""
    if not _isolated():
        pytest.skip("this machine does not allow user namespaces: calls run without isolation")
    install, kernel = functions
    values = {"CONNECTION": str(kernel / "connection.json"), "KERNEL": str(kernel)}
    space = install(HOSTILE, "attack(1)", values)
    result = space["attack"](os.getpid())
    assert result == {"reached": [], "parent": 0, "pid": 1}, result
    from helpers import check

    assert check.equal.__module__ == "helpers._check", "replaced in the grader's process"
    os.kill(os.getpid(), 0)  # and this process is alive


def test_the_graders_kernel_can_be_made_undumpable() -> None:
    import subprocess
    import sys

    probe = (
        "import ctypes; from helpers._grading import arm; before = ctypes.CDLL(None).prctl(3, 0, 0, 0, 0); "
        "arm.harden(); print(before, ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))"  # PR_GET_DUMPABLE
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["1", "0"]


def test_a_call_killed_at_its_limit_leaves_nothing_running(functions: Any) -> None:
    install, _ = functions
    space = install(
        "import subprocess\ndef f():\n    subprocess.Popen(['sleep', '7654999'])\n"
        "    import time\n    time.sleep(60)\n",
        "f()",
    )
    with pytest.raises(arm.FunctionFailed, match="did not return"):
        space["f"]()
    time.sleep(0.5)
    left = [
        p.name for p in Path("/proc").iterdir() if p.name.isdigit() and b"7654999" in _cmdline(p)
    ]
    assert not left, left


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


# --- answers that reach for the grading ---------------------------------------------------------

HOSTILE_SOURCES = [
    ("check.equal = lambda *a, **k: None", "replaces check.equal"),
    ("from helpers import check as c\nc.equal = print", "replaces c.equal"),
    ("import helpers.check as hc\nhc.pod_ready = print", "replaces hc.pod_ready"),
    ("c = helpers.check\nc.equal = print", "replaces c.equal"),
    ("vars(check)['equal'] = print", "replaces vars(check)['equal']"),
    ("vars(check).update(equal=print)", "writes vars(check) by name"),
    ("check.__dict__['equal'] = print", "replaces check.__dict__['equal']"),
    ("globals()['check'] = None", "writes globals()['check'] by name"),
    (
        "import importlib\nm = importlib.import_module('helpers.check')\nm.equal = 1",
        "replaces m.equal",
    ),
    (
        "setattr(__import__('helpers').check, 'equal', print)",
        "setattr on __import__('helpers').check",
    ),
    ("getattr(__builtins__, 'setattr')(check, 'equal', print)", "reaches builtins by name"),
    ("import builtins\nbuiltins.print = len", "replaces builtins.print"),
    ("b = builtins\nb.exec('x = 1')", "runs code built at run time"),
    ("exec('check.equal = print')", "runs code built at run time"),
    ("import importlib\nimportlib.reload(check)", "reloads a module"),
    ("import importlib\nimportlib.import_module(name)", "imports a module named at run time"),
    ("import sys\nsys.modules['helpers.check'] = None", "replaces sys.modules['helpers.check']"),
    ("import sys as s\ns.modules.pop('helpers')", "writes s.modules by name"),
    ("get_ipython().input_transformers_post.append(f)", "registers an input transformer"),
    (
        "ip = get_ipython()\nip.events.register('pre_run_cell', f)",
        "registers an IPython event hook",
    ),
    ("!rm -rf /tmp/x", "runs a shell command (get_ipython().system)"),
    ("files = !ls", "runs a shell command (get_ipython().getoutput)"),
    ("%%bash\necho hi", "runs a shell command (%bash)"),
    ("%run other.py", "runs the magic %run"),
    ("%time check.equal = print", "replaces check.equal"),
    ("%%capture\nc = helpers.check\nc.equal = print", "replaces c.equal"),
    ("import ctypes", "imports ctypes"),
    ("def f(:\n    pass", "does not parse"),
    (
        "def f():\n    import helpers.check\n    helpers.check.equal = print",
        "replaces helpers.check.equal",
    ),
]

HONEST_SOURCES = [
    'docker.exec("shop", "hostname").stdout.strip()',
    'k8s.exec("page", "ls", ns).check_returncode()',
    "node = k8s.list_objects('nodes')[0]\nnode.status['x'] = 1",
    "settings = {}\nsettings.update(a=1)\nmanifest = {'spec': {}}\nmanifest['spec']['x'] = 1",
    "import re\npattern = re.compile('x')",
    "events = k8s.events(ns)",
    "%matplotlib inline\nimport json\njson.dumps({})",
    "def notes(value):\n    return {'data': {'chapter': value}}",
]


@pytest.mark.parametrize(("source", "finding"), HOSTILE_SOURCES)
def test_the_scan_finds_answers_that_reach_for_the_grading(source: str, finding: str) -> None:
    notebook = {
        "cells": [_plain_cell("import helpers\nfrom helpers import check"), _answer(source)]
    }
    found = tampering.flags(notebook)
    assert any(finding in line for line in found), found
    assert all(line.startswith("answer: ") for line in found), found


@pytest.mark.parametrize("source", HONEST_SOURCES)
def test_the_scan_leaves_honest_answers_alone(source: str) -> None:
    notebook = {
        "cells": [_plain_cell("import helpers\nfrom helpers import check, k8s"), _answer(source)]
    }
    assert tampering.flags(notebook) == []


def test_an_alias_made_in_one_cell_is_followed_into_another() -> None:
    notebook = {
        "cells": [
            _answer("from helpers import check as c", "answer_a"),
            _test_cell("test_a", "check.equal(1, 1, what='x')"),
            _answer("c.equal = print", "answer_b"),
        ]
    }
    assert tampering.flags(notebook) == ["answer_b: replaces c.equal"]


def test_the_solutions_and_their_releases_are_not_flagged() -> None:
    for folder in ("solutions", "exercises"):
        for path in sorted((REPO / folder).glob("*/*.ipynb")):
            assert tampering.flags(json.loads(path.read_text())) == [], path
