"""Read a notebook's `parameters` cell and check overrides against it before any compute.

The cell holds plain literals, one per line, each with a comment:

    vocab_sizes = [512, 1024, 4096]   # BPE vocabulary sizes to train
    corpus: str | dict = "stories"    # corpus spec (see storylab.corpora)

A parameter's type is its annotation when there is one, else the type of its default
(`None` accepts anything; an int is accepted where a float is expected).
"""

from __future__ import annotations

import ast
import difflib
import io
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import yaml

TYPE_NAMES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict, "None": type(None)}


class ParameterError(ValueError):
    """A parameter that does not fit the notebook: reported as one line, before any compute."""


@dataclass(frozen=True)
class Parameter:
    name: str
    default: Any
    types: tuple[type, ...] | None  # None: any type
    comment: str

    def type_label(self) -> str:
        if self.types is None:
            return "any"
        return " | ".join("None" if t is type(None) else t.__name__ for t in self.types)


def parameters_cell(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    for cell in notebook.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return cell
    raise ParameterError("notebook has no cell tagged 'parameters'")


def notebook_parameters(path: str | Path) -> dict[str, Parameter]:
    """The parameters a notebook declares, in order, with defaults, types and comments."""
    source = parameters_cell(nbformat.read(str(path), as_version=4)).source
    comments = _line_comments(source)
    parameters: dict[str, Parameter] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, annotation = node.targets[0].id, None
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name, annotation = node.target.id, node.annotation
        else:
            continue
        default = ast.literal_eval(node.value)
        types = _annotation_types(annotation) if annotation is not None else _default_types(default)
        parameters[name] = Parameter(name, default, types, comments.get(node.lineno, ""))
    return parameters


def _line_comments(source: str) -> dict[int, str]:
    comments = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    return comments


def _default_types(default: Any) -> tuple[type, ...] | None:
    if default is None:
        return None
    if isinstance(default, float):
        return (float, int)
    return (type(default),)


def _annotation_types(annotation: ast.expr) -> tuple[type, ...]:
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        return _annotation_types(annotation.left) + _annotation_types(annotation.right)
    if isinstance(annotation, ast.Subscript):  # list[int] → list
        annotation = annotation.value
    name = annotation.id if isinstance(annotation, ast.Name) else getattr(annotation, "value", None)
    name = "None" if name is None else name
    if name not in TYPE_NAMES:
        raise ParameterError(f"unsupported parameter annotation {ast.unparse(annotation)!r}")
    types = (TYPE_NAMES[name],)
    return types + ((int,) if float in types else ())


def parse_cli_overrides(pairs: list[str]) -> dict[str, Any]:
    """`["rows=100", "vocab_sizes=[256,512]"]` → values parsed as YAML (a bare word is a string)."""
    overrides = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise ParameterError(f"-p {pair!r}: expected name=value")
        overrides[name.strip()] = parse_value(text)
    return overrides


def parse_value(text: str) -> Any:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:  # YAML 1.1 reads "1e-3" as a string
            return float(text) if any(c in text.lower() for c in ".e") else value
        except ValueError:
            return value
    return value


def validate_parameters(declared: dict[str, Parameter], overrides: dict[str, Any], notebook: str = "notebook") -> dict[str, Any]:
    """Check overrides against the declared parameters (names and types); return them unchanged."""
    checked = {}
    for name, value in overrides.items():
        if name not in declared:
            close = difflib.get_close_matches(name, list(declared), n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else f"; expected one of: {', '.join(declared)}"
            raise ParameterError(f"{notebook}: unknown parameter {name!r}{hint}")
        parameter = declared[name]
        if parameter.types is not None and not _fits(value, parameter.types):
            raise ParameterError(
                f"{notebook}: parameter {name!r} expects {parameter.type_label()}, got {value!r} ({type(value).__name__})"
            )
        checked[name] = value
    return checked


def _fits(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in types
    return isinstance(value, types)


def read_yaml_mapping(path: str | Path, where: str, expected: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping (params, pipeline and sweep files); one-line errors."""
    path = Path(path)
    if not path.exists():
        raise ParameterError(f"{where}: no such file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ParameterError(f"{where}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ParameterError(f"{where}: expected {expected}")
    return data


def load_params_file(path: str | Path) -> dict[str, Any]:
    return read_yaml_mapping(path, f"-f {str(path)!r}", "a mapping of parameter names to values")
