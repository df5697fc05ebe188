"""The model registry: every architecture the workbench knows, its options, and how to build it.

Architectures register a builder with `@register_model(...)`; the UI and CLI only ask this module.
Builders are called as `builder(num_classes=..., input_shape=(C, H, W), **options)` and return a module
that may still hold lazy layers; `build_model` materialises them with a dry forward pass.
"""

from __future__ import annotations

import ast
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from workbench.errors import InvalidOptionError, UnknownNameError, WorkbenchError, suggest

FAMILY_ORDER: tuple[str, ...] = ("Classic", "VGG", "NiN", "GoogLeNet", "ResNet", "torchvision")

Validator = Callable[[Any], Any]


@dataclass(frozen=True)
class OptionSpec:
    """One hyper-parameter of an architecture.

    `validate` (an extension of the documented contract) normalises a value or raises
    InvalidOptionError's message as ValueError; without it the value must match `choices` or the type of
    `default`.
    """

    name: str
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    validate: Validator | None = field(default=None, compare=False, repr=False)
    allowed: str = ""  # human text for "what is allowed" when `validate` is used

    def describe(self) -> str:
        """What values are allowed, in words: "one of 'a', 'b'", "True or False", "an integer >= 1", ..."""
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.allowed:
            return self.allowed
        default = self.default
        if isinstance(default, bool):
            return "True or False"
        if isinstance(default, int):
            return "an integer"
        if isinstance(default, float):
            return "a number"
        if isinstance(default, str):
            return "a string"
        return f"a value of type {type(default).__name__}"


@dataclass(frozen=True)
class ArchSpec:
    """What the registry knows about one architecture name."""

    name: str
    family: str
    description: str
    natural_input: tuple[int, int, int]
    default_classes: int
    options: tuple[OptionSpec, ...]
    preset_of: str | None = None  # extension: the base architecture this name is a preset of
    input_for: Callable[[dict[str, Any]], tuple[int, int, int]] | None = field(
        default=None, compare=False, repr=False
    )
    # extension: what to do when the input is too small, for these resolved options (AlexNet: the small stem)
    too_small_hint: Callable[[dict[str, Any]], str] | None = field(default=None, compare=False, repr=False)

    def defaults(self) -> dict[str, Any]:
        """Default value of every option."""
        return {o.name: o.default for o in self.options}

    def natural_input_for(self, options: dict[str, Any] | None = None) -> tuple[int, int, int]:
        """Natural (C, H, W) for these options (e.g. AlexNet's small stem wants 32 px)."""
        if self.input_for is not None and options:
            return self.input_for({**self.defaults(), **options})
        return self.natural_input

    def small_input_hint(self, options: dict[str, Any] | None = None) -> str:
        """The advice that ends an "input too small" message ('' when the architecture gives none)."""
        if self.too_small_hint is None:
            return ""
        return self.too_small_hint({**self.defaults(), **(options or {})})


Builder = Callable[..., nn.Module]
_SPECS: dict[str, ArchSpec] = {}
# Families registered on first use: torchvision's zoo costs ~2 s to import, which `workbench train --arch
# lenet` or a lecture model's summary should not pay.
_DEFERRED: dict[str, str] = {}   # name prefix -> module that registers those names


def register_deferred(prefix: str, module: str) -> None:
    """Register the architectures named `prefix*` by importing `module` only when one is asked for."""
    _DEFERRED[prefix] = module


def _load_deferred(name: str | None = None) -> None:
    """Import the deferred families `name` may belong to (all of them when name is None)."""
    import importlib

    for prefix, module in list(_DEFERRED.items()):
        if name is None or name.startswith(prefix):
            del _DEFERRED[prefix]
            importlib.import_module(module)
_BUILDERS: dict[str, Builder] = {}


def register_model(
    name: str,
    *,
    family: str,
    description: str,
    natural_input: tuple[int, int, int],
    default_classes: int,
    options: tuple[OptionSpec, ...] = (),
    preset_of: str | None = None,
    input_for: Callable[[dict[str, Any]], tuple[int, int, int]] | None = None,
    too_small_hint: Callable[[dict[str, Any]], str] | None = None,
) -> Callable[[Builder], Builder]:
    """Decorator registering `builder` under `name`; a name may be registered only once."""
    if family not in FAMILY_ORDER:
        raise ValueError(f"unknown family {family!r}")

    def decorate(builder: Builder) -> Builder:
        if name in _SPECS:
            raise ValueError(f"model {name!r} is already registered")
        _SPECS[name] = ArchSpec(
            name, family, description, check_input_shape(natural_input), default_classes, tuple(options), preset_of,
            input_for, too_small_hint,
        )
        _BUILDERS[name] = builder
        return builder

    return decorate


def list_models(pattern: str = "*", family: str | None = None) -> list[str]:
    """Registered names matching the fnmatch `pattern`, in family display order then registration order."""
    _load_deferred()
    order = {f: i for i, f in enumerate(FAMILY_ORDER)}
    names = [
        n
        for n, s in _SPECS.items()
        if fnmatch.fnmatchcase(n, pattern) and (family is None or s.family.lower() == family.lower())
    ]
    position = {n: i for i, n in enumerate(_SPECS)}
    return sorted(names, key=lambda n: (order[_SPECS[n].family], position[n]))


def list_families() -> list[str]:
    """Families that have at least one model, in display order."""
    _load_deferred()
    present = {s.family for s in _SPECS.values()}
    return [f for f in FAMILY_ORDER if f in present]


def get_spec(name: str) -> ArchSpec:
    """The ArchSpec of `name`; UnknownNameError (with close names) when it is not registered."""
    spec = _SPECS.get(name)
    if spec is None and _DEFERRED:
        _load_deferred(name if any(name.startswith(p) for p in _DEFERRED) else None)
        spec = _SPECS.get(name)
    if spec is None:
        hint = suggest(name, list(_SPECS)) or " Run `workbench list` to see every architecture."
        raise UnknownNameError(f"Unknown architecture {name!r}.{hint}")
    return spec


def _broken_literal(o: OptionSpec, value: Any) -> bool:
    """True for a string that tries to be a tuple/list/dict literal but does not parse (e.g. '((2,64),')."""
    if not isinstance(value, str) or isinstance(o.default, str) or any(isinstance(c, str) for c in o.choices or ()):
        return False
    text = value.strip()
    if not text or (text[0] not in "([{" and "," not in text):
        return False
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return True
    return False


def _check_value(arch: str, o: OptionSpec, value: Any) -> Any:
    if _broken_literal(o, value):
        raise InvalidOptionError(
            f"Invalid value {value!r} for option {o.name!r} of {arch}: it is not a valid Python literal (check its "
            f"brackets and commas); expected {o.describe()}."
        )
    bad = InvalidOptionError(f"Invalid value {value!r} for option {o.name!r} of {arch}: expected {o.describe()}.")
    if o.validate is not None:
        try:
            return o.validate(value)
        except (ValueError, TypeError) as exc:
            raise bad from exc
    if o.choices is not None:
        if value not in o.choices or isinstance(value, bool) != isinstance(o.choices[0], bool):
            raise bad
        return value
    default = o.default
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        value = float(value)
    elif isinstance(default, str) and not isinstance(value, str):
        raise bad
    return value


def resolve_options(name: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults of `name` overlaid with `options`, each validated; InvalidOptionError on a bad one."""
    spec = get_spec(name)
    known = {o.name: o for o in spec.options}
    resolved = spec.defaults()
    for key, value in (options or {}).items():
        if key not in known:
            allowed = ", ".join(known) or "none"
            raise InvalidOptionError(
                f"Unknown option {key!r} for {name} (its options: {allowed}).{suggest(key, list(known))}"
            )
        resolved[key] = _check_value(name, known[key], value)
    return resolved


def check_input_shape(value: Any, source: str = "The input shape") -> tuple[int, int, int]:
    """`value` (three numbers or numeric strings) as a (C, H, W) tuple; the one wording for a bad shape."""
    try:
        shape = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        shown = ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else value
        raise InvalidOptionError(
            f"{source} must be three positive whole numbers C,H,W (e.g. 3,32,32), got {str(shown)!r}.")
    return shape


def _check_classes(num_classes: Any) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise InvalidOptionError(f"The number of classes must be a positive integer, got {num_classes!r}.")
    return num_classes


def construct(
    name: str,
    *,
    num_classes: int | None = None,
    input_shape: tuple[int, int, int] | None = None,
    options: dict[str, Any] | None = None,
) -> tuple[nn.Module, tuple[int, int, int], int, dict[str, Any]]:
    """Instantiate (lazy, on the current default device) without materialising.

    Returns (module, input_shape, num_classes, resolved options).
    """
    spec = get_spec(name)
    resolved = resolve_options(name, options)
    classes = _check_classes(spec.default_classes if num_classes is None else num_classes)
    shape = check_input_shape(spec.natural_input_for(resolved) if input_shape is None else input_shape)
    try:
        # `init` is applied by build_model once lazy layers are materialised; builders never see it.
        built = {k: v for k, v in resolved.items() if k != "init"}
        module = _BUILDERS[name](num_classes=classes, input_shape=shape, **built)
    except WorkbenchError:
        raise
    except (ValueError, AssertionError, RuntimeError) as exc:
        # A constructor's own shape check (torchvision's MaxViT partitions, ViT patches): one sentence, exit 2.
        raise InvalidOptionError(_construction_failed(spec, shape, resolved, exc)) from exc
    return module, shape, classes, resolved


def _construction_failed(spec: ArchSpec, shape: tuple[int, int, int], options: dict[str, Any], exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    reason = text.split(". ")[0].rstrip(".")  # torchvision's messages run on over several sentences
    natural = "x".join(str(v) for v in spec.natural_input_for(options))
    given = "x".join(str(v) for v in shape)
    return (
        f"{spec.name} cannot be built for a {given} input ({reason}); use its natural input {natural} or "
        f"another size it accepts."
    )


def build_model(
    name: str,
    *,
    num_classes: int | None = None,
    input_shape: tuple[int, int, int] | None = None,
    options: dict[str, Any] | None = None,
    device: torch.device | str | None = None,
    initialize_weights: bool = True,
) -> nn.Module:
    """Build `name` with real parameters (lazy layers materialised by a dry forward at `input_shape`), ready for
    an optimizer; InputTooSmallError names the layer where the feature map vanishes. `initialize_weights=False`
    skips the `init` option's draw, for a model whose weights are loaded next (a checkpoint, an export)."""
    from workbench.models.dryrun import dry_forward

    target = torch.device(device) if device is not None else torch.device("cpu")
    with target:
        module, shape, _, resolved = construct(name, num_classes=num_classes, input_shape=input_shape, options=options)
        dry_forward(module, shape, batch=2, arch=name, hint=get_spec(name).small_input_hint(resolved))
        if "init" in resolved and initialize_weights and target.type != "meta":
            from workbench.models.init import initialize

            with torch.no_grad():
                initialize(module, str(resolved["init"]))
    module.train()
    return module


def split_outputs(output: Any) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(main logits, aux logits) from a model's output: a tensor, a tuple, or torchvision's namedtuples."""
    if isinstance(output, torch.Tensor):
        return output, []
    if hasattr(output, "_fields"):  # torchvision GoogLeNetOutputs / InceptionOutputs
        values = [getattr(output, f) for f in output._fields]
        tensors = [v for v in values if isinstance(v, torch.Tensor)]
        if tensors:
            return tensors[0], tensors[1:]
    if isinstance(output, (tuple, list)) and output and all(isinstance(v, torch.Tensor) for v in output):
        return output[0], list(output[1:])
    raise WorkbenchError(f"The model returned an unsupported output of type {type(output).__name__}.")
