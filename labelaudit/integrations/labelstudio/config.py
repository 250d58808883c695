"""Label Studio labeling configs: which data field holds the text and which control the class label.

A labeling config is XML (``<View><Text name="text" value="$text"/><Choices name="sentiment"
toName="text" choice="single">…``). labelaudit reviews single-label text classification, so it needs
exactly one single-choice ``Choices`` control attached to a text object; any other config is refused
with a message that says what was found. Controls whose name starts with ``labelaudit_`` are the ones
labelaudit adds itself when it pushes a queue (the reviewer's ambiguous/remove flag) and are not the
class label.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from labelaudit.errors import DataError, Problem

#: Object tags whose ``value="$field"`` names a text field of the task data.
TEXT_OBJECTS = ("Text", "HyperText", "Paragraphs")
#: Control tags other than Choices: their presence alone does not refuse a config (a comment box is
#: fine), but a config with one of these and no Choices is not classification.
OTHER_CONTROLS = (
    "Labels",
    "HyperTextLabels",
    "ParagraphLabels",
    "RectangleLabels",
    "PolygonLabels",
    "KeyPointLabels",
    "BrushLabels",
    "EllipseLabels",
    "TimeSeriesLabels",
    "Taxonomy",
    "Rating",
    "Ranker",
    "Relations",
    "TextArea",
    "Number",
    "DateTime",
    "Pairwise",
)
#: Prefix of the controls labelaudit adds to projects it creates.
OWN_PREFIX = "labelaudit_"
SINGLE_CHOICE = ("single", "single-radio")


@dataclass(frozen=True)
class ClassificationConfig:
    """What labelaudit reads from a labeling config.

    ``text_field``: key of the task data holding the text; ``control``: name of the Choices control
    (``from_name`` in annotation results); ``classes``: the Choice values in config order;
    ``aliases``: result value -> class name for Choices with an ``alias``.
    """

    text_field: str
    control: str
    classes: list[str]
    to_name: str = ""
    aliases: dict[str, str] = field(default_factory=dict)

    def class_of(self, value: str) -> str:
        """The class name a result value stands for (aliases resolved)."""
        return self.aliases.get(value, value)


def _tag(el: ET.Element) -> str:
    return el.tag.rsplit("}", 1)[-1]


def parse_label_config(
    xml: str,
    *,
    control: str | None = None,
    text_field: str | None = None,
    file: str = "<label config>",
) -> ClassificationConfig:
    """Read the text field and the single-choice class control from a Label Studio labeling config.

    ``control`` / ``text_field`` pick one when the config has several (``--label-col`` /
    ``--text-col`` on the command line). Raises :class:`~labelaudit.errors.DataError` naming what
    was found for XML that does not parse, a config without a single-choice Choices control (NER,
    ratings, multi-choice…), or an ambiguous one.

    >>> cfg = parse_label_config('<View><Text name="t" value="$review"/>'
    ...     '<Choices name="sentiment" toName="t" choice="single">'
    ...     '<Choice value="pos"/><Choice value="neg"/></Choices></View>')
    >>> cfg.text_field, cfg.control, cfg.classes
    ('review', 'sentiment', ['pos', 'neg'])
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise DataError(
            Problem(
                f"the labeling config is not valid XML ({e})",
                "a Label Studio <View> config",
                file=file,
            )
        ) from None
    objects = {
        el.get("name", ""): el.get("value", "")
        for el in root.iter()
        if _tag(el) in TEXT_OBJECTS and el.get("name")
    }
    choices = [
        el
        for el in root.iter()
        if _tag(el) == "Choices" and not el.get("name", "").startswith(OWN_PREFIX)
    ]
    others = sorted(
        {f"{_tag(el)} '{el.get('name', '')}'" for el in root.iter() if _tag(el) in OTHER_CONTROLS}
    )
    expected = "one single-choice <Choices> control on a <Text> object (text classification)"
    if control is not None:
        named = [c for c in choices if c.get("name") == control]
        if not named:
            raise DataError(
                Problem(
                    f"no Choices control named '{control}'; the config has "
                    + (", ".join(f"'{c.get('name')}'" for c in choices) or "none"),
                    expected,
                    file=file,
                    column=control,
                )
            )
        choices = named
    if not choices:
        raise DataError(
            Problem(
                "the labeling config is not single-choice text classification: it has no Choices control"
                + (f" (found {', '.join(others)})" if others else ""),
                expected,
                file=file,
                fix="labelaudit reviews one class label per text; export a classification project",
            )
        )
    if len(choices) > 1:
        raise DataError(
            Problem(
                "the config has several Choices controls: "
                + ", ".join(f"'{c.get('name')}'" for c in choices),
                "one class-label control",
                file=file,
                fix="say which holds the class label with --label-col NAME",
            )
        )
    ch = choices[0]
    name = ch.get("name", "")
    mode = ch.get("choice", "single")
    if mode not in SINGLE_CHOICE:
        raise DataError(
            Problem(
                f"the Choices control '{name}' allows several choices per item (choice=\"{mode}\")",
                'a single-choice control (choice="single" or "single-radio")',
                file=file,
                column=name,
                fix="labelaudit reviews one class label per text; use a single-choice project",
            )
        )
    classes: list[str] = []
    aliases: dict[str, str] = {}
    for c in ch.iter():
        if _tag(c) != "Choice":
            continue
        value = c.get("value")
        if value is None:
            continue
        classes.append(value)
        if c.get("alias"):
            aliases[c.get("alias", "")] = value
    if len(classes) < 2:
        raise DataError(
            Problem(
                f"the Choices control '{name}' has {len(classes)} choice(s)",
                "at least two classes",
                file=file,
                column=name,
            )
        )
    to_name = ch.get("toName", "")
    if text_field is None:
        ref = objects.get(to_name.split(",")[0])
        if ref is None:
            raise DataError(
                Problem(
                    f"the Choices control '{name}' labels '{to_name}', which is not a Text object of the config",
                    "toName naming a <Text>, <HyperText> or <Paragraphs> tag",
                    file=file,
                    column=name,
                    fix="say which task field holds the text with --text-col FIELD",
                )
            )
        if not ref.startswith("$"):
            raise DataError(
                Problem(
                    f"the Text object '{to_name}' shows the fixed value {ref!r}, not a task field",
                    'value="$field"',
                    file=file,
                )
            )
        text_field = ref[1:]
    return ClassificationConfig(
        text_field=text_field, control=name, classes=classes, to_name=to_name, aliases=aliases
    )


def classification_config_xml(
    classes: list[str], *, text_field: str = "text", control: str = "label"
) -> str:
    """The labeling config labelaudit creates for a review project.

    The text, the given label and the evidence are shown; the reviewer picks one class (the suggestion
    is pre-selected from the prediction) and may flag the item as ambiguous or to be removed.
    """

    def attr(v: str) -> str:
        return (
            v.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
        )

    options = "".join(f'<Choice value="{attr(c)}"/>' for c in classes)
    return (
        "<View>"
        f'<Text name="{text_field}" value="${text_field}"/>'
        '<Header value="Given label: $given_label"/>'
        '<Header value="labelaudit suggests: $suggested_label (score $label_issue_score)"/>'
        f'<Choices name="{control}" toName="{text_field}" choice="single" showInline="false">{options}</Choices>'
        f'<Choices name="{OWN_PREFIX}decision" toName="{text_field}" choice="single" required="false">'
        '<Choice value="ambiguous"/><Choice value="remove"/></Choices>'
        '<Text name="evidence" value="$evidence"/>'
        "</View>"
    )
