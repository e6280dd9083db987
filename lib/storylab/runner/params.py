"""Read a notebook's `parameters` cell and check values against it before any compute.

The cell holds plain literals, one per line, each with a comment:

    from typing import Literal
    vocab_sizes = [512, 1024, 4096]   # BPE vocabulary sizes to train
    corpus: str | dict = "stories"    # corpus spec (see storylab.corpora)
    max_len_mode: Literal["split", "truncate"] = "split"   # a fixed set of choices

A parameter's type is its annotation when there is one, else the type of its default
(`None` accepts anything; an int is accepted where a float is expected). `Literal[...]`
names the only values allowed. Imports in the cell are skipped.

The notebook is read as plain JSON (not through nbformat, whose schema validator takes
a second to import): the command line and each notebook's first cell start fast.
"""

from __future__ import annotations

import ast
import difflib
import io
import json
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from storylab.paths import NOTEBOOKS_DIR
from storylab.readers import read_json, read_yaml

TYPE_NAMES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict, "None": type(None)}


class ParameterError(ValueError):
    """A parameter that does not fit the notebook: reported as one line, before any compute.

    In Jupyter (Lab or papermill) the error shows as that one line instead of a
    traceback: IPython prints what `_render_traceback_` returns.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"ParameterError: {self}"]


@dataclass(frozen=True)
class Parameter:
    name: str
    default: Any
    types: tuple[type, ...] | None  # None: any type
    comment: str
    choices: tuple[Any, ...] | None = None  # from Literal[...]: the only values allowed

    def type_label(self) -> str:
        if self.choices is not None:
            extra = " | None" if self.types and type(None) in self.types and None not in self.choices else ""
            return " | ".join(json.dumps(c) for c in self.choices) + extra
        if self.types is None:
            return "any"
        return " | ".join("None" if t is type(None) else t.__name__ for t in self.types)

    def accepts(self, value: Any) -> bool:
        if self.choices is None:
            return self.types is None or _fits(value, self.types)
        if value is None:
            return type(None) in (self.types or ())
        return any(value == choice and type(value) is type(choice) for choice in self.choices)  # True is not 1


def resolve_notebook(notebook: str | Path) -> Path:
    """`01_tokenizers`, `01_tokenizers.ipynb`, `01` or a path → the notebook file."""
    if not isinstance(notebook, (str, Path)):  # `notebook: 2` in a YAML file
        raise ParameterError(f"notebook {notebook!r}: expected a notebook name or path (e.g. 02_hmm), "
                             f"got a {type(notebook).__name__}")
    path = Path(notebook)
    if path.suffix == ".ipynb" and path.is_file():
        return path.resolve()
    stem = path.name.removesuffix(".ipynb")
    matches = sorted(NOTEBOOKS_DIR.glob(f"{stem}*.ipynb")) if stem else []
    exact = [m for m in matches if m.stem == stem]
    if exact or len(matches) == 1:
        return (exact or matches)[0]
    available = ", ".join(p.stem for p in sorted(NOTEBOOKS_DIR.glob("*.ipynb")))
    raise ParameterError(f"notebook {str(notebook)!r} not found; expected one of: {available}")


def read_notebook_json(path: str | Path) -> dict[str, Any]:
    """A notebook file as its JSON dict; one-line errors naming the file."""
    where = f"notebook {str(path)!r}"
    data = read_json(path, where, "a Jupyter notebook (.ipynb JSON)", ParameterError)
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise ParameterError(f"{where}: expected a Jupyter notebook (a JSON object with 'cells')")
    return data


def parameters_source(path: str | Path) -> str:
    """The source of the code cell tagged `parameters`."""
    for cell in read_notebook_json(path)["cells"]:
        tags = (cell.get("metadata") or {}).get("tags") or []
        if cell.get("cell_type") == "code" and "parameters" in tags:
            source = cell.get("source", "")
            return "".join(source) if isinstance(source, list) else str(source)
    raise ParameterError(f"notebook {str(path)!r} has no cell tagged 'parameters'")


def notebook_parameters(path: str | Path) -> dict[str, Parameter]:
    """The parameters a notebook declares, in order, with defaults, types and comments."""
    source = parameters_source(path)
    where = f"notebook {Path(path).name}"
    try:
        body = ast.parse(source).body
    except SyntaxError as error:
        raise ParameterError(f"{where}: the parameters cell is not valid Python (line {error.lineno}: {error.msg})") from None
    comments = _line_comments(source)
    parameters: dict[str, Parameter] = {}
    for node in body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, annotation = node.targets[0].id, None
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name, annotation = node.target.id, node.annotation
        else:
            continue  # imports (`from typing import Literal`), docstrings
        try:
            default = ast.literal_eval(node.value)
        except ValueError:
            raise ParameterError(f"{where}: parameter {name!r} (line {node.lineno}) is not a plain literal") from None
        if annotation is None:
            types, choices = _default_types(default), None
        else:
            types, choices = _annotation_types(annotation, f"{where}: parameter {name!r}")
        parameters[name] = Parameter(name, default, types, comments.get(node.lineno, ""), choices)
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


def _annotation_types(annotation: ast.expr, where: str) -> tuple[tuple[type, ...], tuple[Any, ...] | None]:
    """(types, Literal choices or None) of an annotation like `int | None` or `Literal["a", "b"] | None`."""
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        left_types, left_choices = _annotation_types(annotation.left, where)
        right_types, right_choices = _annotation_types(annotation.right, where)
        if left_choices is not None or right_choices is not None:
            choices = (left_choices or ()) + (right_choices or ())
            return left_types + right_types, choices
        return left_types + right_types, None
    if isinstance(annotation, ast.Subscript) and _name(annotation.value) == "Literal":
        elements = annotation.slice.elts if isinstance(annotation.slice, ast.Tuple) else [annotation.slice]
        try:
            choices = tuple(ast.literal_eval(e) for e in elements)
        except ValueError:
            raise ParameterError(f"{where}: Literal[...] must list plain values, got {ast.unparse(annotation)!r}") from None
        return tuple(dict.fromkeys(type(c) for c in choices)), choices
    if isinstance(annotation, ast.Subscript):  # list[int] → list
        annotation = annotation.value
    name = _name(annotation)
    if name not in TYPE_NAMES:
        raise ParameterError(f"{where}: unsupported annotation {ast.unparse(annotation)!r}; expected int, float, str, "
                             "bool, list, dict, None, Literal[...] or a union of them")
    types = (TYPE_NAMES[name],)
    return types + ((int,) if float in types else ()), None


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):  # typing.Literal
        return node.attr
    if isinstance(node, ast.Constant) and node.value is None:
        return "None"
    return ast.unparse(node)


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


def validate_parameters(declared: dict[str, Parameter], overrides: dict[str, Any], notebook: str = "notebook",
                        hint: str = "") -> dict[str, Any]:
    """Check values against the declared parameters (names, types, Literal choices); return them unchanged.

    `hint` is added to a type error (the notebook's own check adds how plain papermill
    passes lists and dicts).
    """
    checked = {}
    for name, value in overrides.items():
        if name not in declared:
            close = difflib.get_close_matches(name, list(declared), n=1, cutoff=0.5)
            did_you_mean = f"; did you mean {close[0]!r}?" if close else f"; expected one of: {', '.join(declared)}"
            raise ParameterError(f"{notebook}: unknown parameter {name!r}{did_you_mean}")
        parameter = declared[name]
        if not parameter.accepts(value):
            shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
            raise ParameterError(f"{notebook}: parameter {name!r} expects {parameter.type_label()}, "
                                 f"got {shown} ({type(value).__name__}){hint}")
        checked[name] = value
    return checked


def _fits(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in types
    return isinstance(value, types)


def read_yaml_mapping(path: str | Path, where: str, expected: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping (params, pipeline and sweep files); one-line errors."""
    data = read_yaml(path, where, f"a YAML file holding {expected}", ParameterError) or {}
    if not isinstance(data, dict):
        raise ParameterError(f"{where}: expected {expected}, got a YAML {type(data).__name__}")
    return data


def load_params_file(path: str | Path) -> dict[str, Any]:
    return read_yaml_mapping(path, f"-f {str(path)!r}", "a mapping of parameter names to values")
