"""Source scan: no unsafe loading, no remote code, no shell strings (issue: reliability)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import REPO
from tests.workflow_helpers import rule_blocks

SOURCE_DIRS = ("tribe_core", "workflow_scripts", "scripts", "benchmarks", "rules")
SELF = Path(__file__).resolve()


def _sources() -> list[Path]:
    files = [REPO / "Snakefile"]
    for folder in SOURCE_DIRS:
        files += [p for p in (REPO / folder).rglob("*") if p.suffix in {".py", ".smk"}]
    return [p for p in files if p.resolve() != SELF]


def _calls(text: str, name: str) -> list[str]:
    """Return the full argument text of every call ``name(...)`` (balanced parentheses)."""
    calls = []
    for match in re.finditer(re.escape(name) + r"\s*\(", text):
        depth, i = 1, match.end()
        while depth and i < len(text):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        calls.append(text[match.end() : i - 1])
    return calls


def test_scan_covers_the_code() -> None:
    names = {p.name for p in _sources()}
    assert {"stages.py", "Snakefile", "common.smk"} <= names


def test_torch_load_always_weights_only() -> None:
    bad = [
        f"{p.relative_to(REPO)}: torch.load({args.strip()[:60]})"
        for p in _sources()
        for args in _calls(p.read_text(encoding="utf-8"), "torch.load")
        if "weights_only=True" not in args
    ]
    assert not bad, "torch.load without weights_only=True:\n" + "\n".join(bad)


def _safe_loaders(text: str) -> set[str]:
    """Loader classes defined in ``text`` as subclasses of yaml's SafeLoader."""
    found = {"SafeLoader", "CSafeLoader", "yaml.SafeLoader", "yaml.CSafeLoader"}
    found |= set(re.findall(r"class\s+(\w+)\((?:yaml\.)?C?SafeLoader\)", text))
    return found


def test_yaml_load_only_with_safe_loaders() -> None:
    bad = []
    for p in _sources():
        text = p.read_text(encoding="utf-8")
        safe = _safe_loaders(text)
        for args in _calls(text, "yaml.load"):
            loader = re.search(r"Loader\s*=\s*([\w.]+)", args)
            if not loader or loader.group(1) not in safe:
                bad.append(f"{p.relative_to(REPO)}: yaml.load({args.strip()[:60]})")
    assert not bad, "yaml.load without a SafeLoader subclass:\n" + "\n".join(bad)


def test_no_unsafe_yaml_remote_code_or_shell() -> None:
    patterns = {
        "unsafe yaml loader": re.compile(r"yaml\.(unsafe_load|full_load)|UnsafeLoader|FullLoader"),
        "trust_remote_code=True": re.compile(r"trust_remote_code\s*=\s*True"),
        "shell=True": re.compile(r"shell\s*=\s*True"),
        "os.system": re.compile(r"os\.system\("),
    }
    bad = [
        f"{p.relative_to(REPO)}:{n + 1}: {label}"
        for p in _sources()
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines())
        for label, pattern in patterns.items()
        if pattern.search(line)
    ]
    assert not bad, "\n".join(bad)


def test_scanner_catches_what_it_claims(tmp_path: Path) -> None:
    # The checks above must be able to fail: feed them a bad snippet.
    bad = 'torch.load(f, map_location="cpu")\nyaml.load(s)\nrun(x, shell=True)\n'
    assert _calls(bad, "torch.load") == ['f, map_location="cpu"']
    assert _calls(bad, "yaml.load") == ["s"]
    assert "Evil" not in _safe_loaders("class Evil(yaml.UnsafeLoader): pass")
    assert "Ok" in _safe_loaders("class Ok(yaml.SafeLoader): pass")
    assert re.search(r"shell\s*=\s*True", bad)


def _rule_paths(text: str) -> list[str]:
    """Every path string in the ``output:``, ``log:`` and ``benchmark:`` blocks of a .smk file."""
    paths = []
    for directives in rule_blocks(text).values():
        for name in ("output", "log", "benchmark"):
            for line in directives.get(name, []):
                if not re.match(r"(category|subcategory|caption|labels)=", line):
                    paths += re.findall(r"f?\"([^\"]*)\"", line)  # report() metadata skipped
    return paths


def test_every_rule_writes_under_the_stimulus_results_folder() -> None:
    # With stimulus names checked by tribe_core.stimuli (no '/', '.', '..', braces), no
    # output can leave results_dir/{stimulus}/ (names: tests/test_reliability_inputs.py).
    paths = {
        f"{p.name}: {path}": path
        for p in sorted((REPO / "rules").glob("*.smk"))
        for path in _rule_paths(p.read_text(encoding="utf-8"))
    }
    assert len(paths) >= 20, "the parser found too few rule paths"
    # Group products (in-silico contrasts, RDM) live in results_dir/insilico/, a name no
    # stimulus may take when they are made (rules/insilico_common.smk refuses it).
    allowed = ("{RESULTS}/{{stimulus}}/", "{INSILICO_DIR}/")
    bad = [where for where, path in paths.items() if not path.startswith(allowed)]
    assert not bad, "rule paths outside results_dir/{stimulus}/ or insilico/:\n" + "\n".join(bad)
    insilico = [path for path in paths.values() if path.startswith("{INSILICO_DIR}/")]
    assert insilico, "the in-silico group rules were not parsed"
    assert _rule_paths('rule x:\n    output:\n        "/etc/passwd",\n') == ["/etc/passwd"]
