"""Request fields (a form or a JSON body) read into the values the job store takes; each parser
raises `InvalidInput` saying what is wrong, in words for the user."""
from __future__ import annotations

import json
from typing import Any

from panelpaint import formats
from panelpaint.colour import COLOUR_ANYWAY_OPTION
from panelpaint.flats import Background
from panelpaint.hints import validate_hints
from panelpaint.limits import ID_MAX, NAME_MAX, SEED_MAX, VARIANTS_DEFAULT, VARIANTS_MAX, VARIANTS_MIN, WORK_SIZE_MAX, WORK_SIZE_MIN
from panelpaint.panels import Direction
from panelpaint.store.batches import CHECK_PANELS
from panelpaint.store.errors import InvalidInput
from panelpaint.store.renders import check_seed

BACKGROUND_OPTION = "background"  # in Batch.options: "paper" | "coloured" for every page; absent: each style's own
# In Batch.options: the book the pages belong to and their issue or chapter number, for the
# CBZ's ComicInfo.xml (absent: the series is the batch's name, no number).
SERIES_OPTION, NUMBER_OPTION = "series", "number"


def optional_int(data, name: str, low: int | None = None, high: int | None = None) -> int | None:  # noqa: ANN001
    """An optional whole-number field (absent or "" is None), within low..high when they are given."""
    value = data.get(name)
    if value in (None, ""):
        return None
    bounds = f" from {low} to {high}" if low is not None and high is not None else ""
    message = f"{name} must be a whole number{bounds}, got {str(value)[:40]!r}."
    if isinstance(value, (bool, float)):
        raise InvalidInput(message)
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise InvalidInput(message) from None
    if (low is not None and number < low) or (high is not None and number > high):
        raise InvalidInput(message)
    return number


def optional_id(data, name: str) -> int | None:  # noqa: ANN001
    """An optional row id field (`panel_id`, `style_id`, `render_id`): 1..ID_MAX, else a 400."""
    return optional_int(data, name, 1, ID_MAX)


def query_int(args, name: str, default: int, low: int, high: int) -> int:  # noqa: ANN001
    """A whole-number query parameter within low..high (absent: `default`)."""
    value = optional_int(args, name, low, high)
    return default if value is None else value


def parse_seed(value: str | int | None) -> int | None:
    """A variant seed: blank/None is the canonical colouring, else a whole number 0..SEED_MAX."""
    if value is None or str(value).strip() == "":
        return None
    message = (f"Seed must be a whole number from 0 to {SEED_MAX} "
               "(leave it blank for the canonical colouring).")
    if isinstance(value, (bool, float)):
        raise InvalidInput(message)
    try:
        return check_seed(int(str(value).strip()))
    except (TypeError, ValueError):  # InvalidInput is a ValueError: the store's range, our words
        raise InvalidInput(message) from None


def parse_count(value: str | int | None) -> int:
    """How many variants (blank: the default): a whole number VARIANTS_MIN..VARIANTS_MAX."""
    if value is None or str(value).strip() == "":
        return VARIANTS_DEFAULT
    count = None
    if isinstance(value, str) and value.strip().isdigit():
        count = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        count = value
    if count is None or not VARIANTS_MIN <= count <= VARIANTS_MAX:
        raise InvalidInput(f"Variants: ask for a whole number from {VARIANTS_MIN} to {VARIANTS_MAX}, got {value!r}.")
    return count


def parse_direction(value: str | None) -> Direction:
    try:
        return Direction((value or Direction.ltr).strip())
    except ValueError:
        raise InvalidInput("Reading direction must be ltr (western) or rtl (manga).") from None


def parse_options(form) -> dict[str, Any]:  # noqa: ANN001 - a MultiDict of the form or API request
    """A batch's options: work size, seed, background, layered files (the outputs every page gets),
    check panels first, whether pages that arrive in colour are coloured anyway, series and number
    (for comic readers)."""
    options: dict[str, Any] = {}
    work_size = (form.get("work_size") or "").strip()
    if work_size:
        try:
            options["work_size"] = int(work_size)
        except ValueError:
            raise InvalidInput("Work size must be a whole number of pixels.") from None
        if not WORK_SIZE_MIN <= options["work_size"] <= WORK_SIZE_MAX:
            raise InvalidInput(f"Work size must be between {WORK_SIZE_MIN} and {WORK_SIZE_MAX} pixels.")
    seed = parse_seed(form.get("seed"))
    if seed is not None:
        options["seed"] = seed
    background = (form.get(BACKGROUND_OPTION) or "").strip()
    if background:
        if background not in {b.value for b in Background}:
            raise InvalidInput(f"Background must be {' or '.join(b.value for b in Background)} "
                               "(or blank for each style's own).")
        options[BACKGROUND_OPTION] = background
    layers = [v.strip().lower() for v in form.getlist("layers") if v.strip()]
    unknown = sorted(set(layers) - set(formats.LAYERED))
    if unknown:
        raise InvalidInput(f"Layered files: unknown {', '.join(unknown)}; choose "
                           f"{' and/or '.join(formats.LAYERED)}.")
    options["formats"] = formats.batch_formats(layers)
    if form.get(COLOUR_ANYWAY_OPTION) not in (None, "", "0", "false", "off"):
        options[COLOUR_ANYWAY_OPTION] = True
    for name, label in ((SERIES_OPTION, "Series"), (NUMBER_OPTION, "Number")):
        value = (form.get(name) or "").strip()
        if len(value) > NAME_MAX:
            raise InvalidInput(f"{label} must be at most {NAME_MAX} characters.")
        if value:
            options[name] = value
    if parse_flag(form.get(CHECK_PANELS), CHECK_PANELS):
        options[CHECK_PANELS] = True
    return options


TRUE, FALSE = frozenset({"1", "true", "on", "yes"}), frozenset({"", "0", "false", "off", "no"})


def parse_flag(value: Any, name: str) -> bool:
    """A checkbox or a JSON boolean: true for a ticked box, "1", "true", "on" or "yes"."""
    if isinstance(value, bool) or value is None:
        return bool(value)
    text = str(value).strip().lower()
    if text not in TRUE | FALSE:
        raise InvalidInput(f"{name} must be true or false, not {value!r}.")
    return text in TRUE


def parse_hints(raw) -> list | None:  # noqa: ANN001 - JSON text or an already parsed list
    """Colour hint dots [{x, y, color}] (None: keep the default)."""
    if raw is None or raw == "":
        return None
    try:
        hints = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(hints, list):
            raise ValueError("hints must be a list of {x, y, color}")
        return validate_hints(hints)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"Bad colour hints: {exc}") from None


def parse_tags(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]
