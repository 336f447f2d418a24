"""Loading a policy directory: every `*.yaml` file, validated and compiled as one whole.

A directory with any bad file is rejected whole, with every problem named by file, line and key, so the
policy in force is always one that was entirely valid.
"""

from __future__ import annotations

from pathlib import Path

from ..config.load import ConfigError, line_finder, parse_model
from .engine import PolicyEngine
from .model import PolicyFile


class PolicyError(Exception):
    def __init__(self, problems: list[str], *, unreadable: bool = False) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
        # Listing or reading failed (too many open files, an I/O error, a file gone mid-read): the files
        # may be fine, so this says nothing about them; the reloader tries again.
        self.unreadable = unreadable


def policy_files(directory: str | Path) -> list[Path]:
    root = Path(directory)
    if not root.is_dir():
        raise PolicyError([f"{root}: not a directory"])
    try:
        return sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    except OSError as exc:
        raise PolicyError([f"{root}: cannot list: {exc.strerror or exc}"], unreadable=True) from None


def load_policies(directory: str | Path) -> PolicyEngine:
    problems: list[str] = []
    unreadable = False
    parsed: list[tuple[str, PolicyFile, dict[int, int]]] = []
    seen_names: dict[str, str] = {}
    for path in policy_files(directory):
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
            policy = parse_model(text, source, PolicyFile, None)
        except OSError as exc:
            problems.append(f"{source}: cannot read: {exc.strerror or exc}")
            unreadable = True
            continue
        except UnicodeDecodeError as exc:
            problems.append(f"{source}: not UTF-8 text (byte {exc.start})")
            continue
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if not policy.model_fields_set:
            # Most likely a file caught mid-write or truncated: applying it would silently drop what it held.
            problems.append(f"{source}:1: the file sets nothing (empty, or comments only); delete it to drop it")
            continue
        lines: dict[int, int] = {}
        line_of = line_finder(text)
        for index, rule in enumerate(policy.rules):
            lines[index] = line_of(("rules", index))
            where = f"{source}:{lines[index]}"
            if rule.name in seen_names:
                other = seen_names[rule.name]
                problems.append(f"{where}: rules[{index}].name: '{rule.name}' is also the name of the rule at {other}")
            seen_names.setdefault(rule.name, where)
            if rule.condition is not None:
                problem = _cel_problem(rule.condition)
                if problem:
                    line = line_of(("rules", index, "condition"))
                    problems.append(f"{source}:{line}: rules[{index}].condition: {problem}")
        parsed.append((source, policy, lines))
    if problems:
        raise PolicyError(problems, unreadable=unreadable)
    return PolicyEngine(parsed)


def _cel_problem(expression: str) -> str | None:
    import cel

    try:
        cel.compile(expression)
    except Exception as exc:  # the library raises ValueError (syntax) and others for bad programs
        return f"invalid CEL expression: {str(exc).splitlines()[0]}"
    return None
