"""What clients send: the request schemas and their field validators.

What the service answers is owned by :mod:`service.documents`.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from email_validator import EmailNotValidError, validate_email
from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    pre_load,
    validate,
    validates_schema,
)

from .ids import ID_PATTERN
from .moderation.policy import REPORT_REASONS
from .states import BULK_ACTIONS, STATUS_VALUES
from .text_policy import (
    comment_problem,
    name_problem,
    unify_line_separators,
    web_url_problem,
)

ARTICLE_ID_PATTERN = re.compile(r"[A-Za-z0-9._~-]{1,200}")
# C0 and C1 controls other than tab and newline have no place in a name or a comment; a NUL
# or an escape sequence is either a mistake or an attack on whoever displays the text.
_CONTROLS = r"\x00-\x08\x0b-\x1f\x7f-\x9f"
_CONTROL = re.compile(f"[{_CONTROLS}]")


def clean_text(value: object) -> object:
    """Normalise to NFC, unify line endings and trim; non-strings pass on to the type check."""
    if not isinstance(value, str):
        return value
    return unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n")).strip()


# Embedding, override and isolate controls reorder how text displays ("Trojan Source"): a
# name could show as someone else's, a comment hide what it says. The plain marks LRM/RLM
# that right-to-left writing needs stay allowed.
_BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069"
_BIDI_CONTROL = re.compile(f"[{_BIDI_CONTROLS}]")
# "Zalgo" text: combining marks stacked far beyond any script's needs, drawn over other lines.
_COMBINING = (
    "\u0300-\u036f\u0483-\u0489\u0591-\u05bd\u0610-\u061a\u064b-\u065f"
    "\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
)
_COMBINING_RUN = re.compile(f"[{_COMBINING}]{{9,}}")
# Any character one of the three checks looks for: one scan of a text that has none (nearly
# every one) instead of three (1.5 us instead of 7.5 for a 250-character comment).
_SUSPECT = re.compile(f"[{_CONTROLS}{_BIDI_CONTROLS}{_COMBINING}]")


def no_control_characters(value: str) -> None:
    if not _SUSPECT.search(value):
        return
    if _CONTROL.search(value):
        raise ValidationError("Must not contain control characters.")
    if _BIDI_CONTROL.search(value):
        raise ValidationError("Must not contain bidirectional override characters.")
    if _COMBINING_RUN.search(value):
        raise ValidationError("Too many combining marks on one character.")


def clean_comment(value: object) -> object:
    """clean_text, with U+2028/U+2029 read as the line breaks they are (text_policy)."""
    if isinstance(value, str):
        value = unify_line_separators(value)
    return clean_text(value)


def name_characters(value: str) -> None:
    """The invisible-character policy for names (service/text_policy.py)."""
    problem = name_problem(value)
    if problem is not None:
        raise ValidationError(problem)


def comment_characters(value: str) -> None:
    """The invisible-character policy for comments (service/text_policy.py)."""
    problem = comment_problem(value)
    if problem is not None:
        raise ValidationError(problem)


def web_url(value: str) -> None:
    """What marshmallow's URL check lets through: a port out of range, quotes, controls."""
    problem = web_url_problem(value)
    if problem is not None:
        raise ValidationError(problem)


def blank_to_none(value: object) -> object:
    # An HTML form sends an untouched optional field as an empty string.
    if isinstance(value, str) and not value.strip():
        return None
    return value.strip() if isinstance(value, str) else value


class EmailAddress(fields.String):
    """An email checked and normalised by email-validator (marshmallow's own is a loose regex)."""

    default_error_messages = {"invalid_email": "Not a valid email address: {reason}"}

    def __init__(self, *, check_deliverability: bool = False, **kwargs: Any) -> None:
        self.check_deliverability = check_deliverability
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            info = validate_email(text, check_deliverability=self.check_deliverability)
        except EmailNotValidError as error:
            # The reason names the problem, never echoes the address back.
            raise self.make_error("invalid_email", reason=str(error).split(" (")[0]) from None
        return info.normalized


class RepeatedEmailAddress(EmailAddress):
    """EmailAddress with its verdicts remembered: an import checks the same few thousand
    authors' addresses over and over (service/importers/run.py)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._verdicts: dict[str, str | ValidationError] = {}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str) or len(self._verdicts) > 100_000:
            return super()._deserialize(value, attr, data, **kwargs)
        verdict = self._verdicts.get(value)
        if verdict is None:
            try:
                verdict = super()._deserialize(value, attr, data, **kwargs)
            except ValidationError as error:
                verdict = error
            self._verdicts[value] = verdict
        if isinstance(verdict, ValidationError):
            raise ValidationError(verdict.messages)
        return verdict


def _whole(pattern: re.Pattern[str]) -> re.Pattern[str]:
    # validate.Regexp only anchors at the start (re.match): "bad id" would pass as "bad".
    return re.compile(r"\A(?:" + pattern.pattern + r")\Z")


_article_id = validate.Regexp(_whole(ARTICLE_ID_PATTERN), error="Not a valid article id.")
_comment_id = validate.Regexp(_whole(ID_PATTERN), error="Not a valid comment id.")


class JsonBoolean(fields.Boolean):
    """true or false, nothing else: marshmallow's own also takes "yes", "on" and 1."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class QueryInteger(fields.Integer):
    """A whole number in a query string: ASCII digits only. int() also reads "٣" (an
    Arabic-Indic digit), "３" (fullwidth), "+3" and " 3" as 3: one number, many spellings."""

    _DIGITS = re.compile(r"[0-9]{1,9}")

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, str) or not self._DIGITS.fullmatch(value):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class QueryBoolean(fields.Boolean):
    """true or false in a query string, spelled so; marshmallow's own also takes "on", "1"."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if value not in ("true", "false"):
            raise self.make_error("invalid")
        return bool(value == "true")


class WholeNumber(fields.Integer):
    """An integer as JSON Schema means it: 90 and 90.0, not "90", 90.5 or true."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid")
        return super()._deserialize(int(value), attr, data, **kwargs)


class ObjectSchema(Schema):
    """A request body that must be a JSON object; unknown members are errors."""

    class Meta:
        unknown = RAISE

    @pre_load
    def _require_mapping(self, data: Any, **kwargs: Any) -> Any:
        if not isinstance(data, dict):
            raise ValidationError("The body must be a JSON object.", field_name="_schema")
        return data


class SubmissionSchema(ObjectSchema):
    """A new comment as JSON. Unknown fields are an error: a client must not set status or id."""

    name = fields.String(
        required=True,
        pre_load=clean_text,
        validate=[validate.Length(min=1, max=100), no_control_characters, name_characters],
    )
    email = fields.String(required=True)  # replaced per app by EmailAddress (see make_schemas)
    comment = fields.String(
        required=True,
        pre_load=clean_comment,
        validate=[validate.Length(min=1, max=5000), no_control_characters, comment_characters],
    )
    website = fields.Url(
        load_default=None,
        allow_none=True,
        schemes={"http", "https"},
        pre_load=blank_to_none,
        validate=[validate.Length(max=500), web_url],
    )
    parent_id = fields.String(
        load_default=None,
        allow_none=True,
        pre_load=blank_to_none,
        validate=_comment_id,
    )
    # The honeypot: a field a page hides from people, so only a bot fills it in. Accepted (a
    # 422 would tell the bot what tripped it), handed to the policy, never stored.
    fax = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))
    # The commenter key the last accepted answer handed out (service/commenter_keys.py); one
    # that is not well-formed is ignored like an unknown one.
    commenter_key = fields.String(
        load_default=None,
        allow_none=True,
        pre_load=blank_to_none,
        validate=validate.Length(max=200),
    )


class FormSubmissionSchema(SubmissionSchema):
    """The same comment from a plain HTML form, which also carries buttons and a redirect."""

    class Meta:
        unknown = EXCLUDE

    redirect = fields.Url(
        load_default=None,
        allow_none=True,
        schemes={"http", "https"},
        require_tld=False,
        pre_load=blank_to_none,
        validate=[validate.Length(max=2000), web_url],
    )


class DecisionSchema(ObjectSchema):
    note = fields.String(
        load_default="",
        pre_load=clean_text,
        validate=[validate.Length(max=1000), no_control_characters],
    )


MAX_BULK_DECISIONS = 200


# A bulk item's version is at most what a JSON number holds exactly (2**53 - 1).
MAX_VERSION = 2**53 - 1


class BulkDecisionItemSchema(ObjectSchema):
    # Any string: an id that names no comment is that item's 404, as on the single route.
    comment_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    action = fields.String(required=True, validate=validate.OneOf(tuple(BULK_ACTIONS)))
    note = fields.String(
        load_default="",
        pre_load=clean_text,
        validate=[validate.Length(max=1000), no_control_characters],
    )
    trust_author = JsonBoolean(load_default=False)
    # The version the moderator reviewed (the If-Match of one item): another one is 412.
    version = WholeNumber(
        load_default=None, allow_none=False, validate=validate.Range(min=1, max=MAX_VERSION)
    )

    @validates_schema
    def _trust_only_with_approval(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("trust_author") and data.get("action") != "approve":
            raise ValidationError("Only an approval can trust the author.", "trust_author")


class BulkDecisionsSchema(ObjectSchema):
    decisions = fields.List(
        fields.Nested(BulkDecisionItemSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_BULK_DECISIONS),
    )

    @validates_schema
    def _each_comment_once(self, data: dict[str, Any], **kwargs: Any) -> None:
        seen: set[str] = set()
        for item in data.get("decisions", []):
            if item["comment_id"] in seen:
                raise ValidationError(
                    f"Comment {item['comment_id']} appears more than once.", "decisions"
                )
            seen.add(item["comment_id"])

    def handle_error(self, error: ValidationError, data: Any, **kwargs: Any) -> None:
        """An item's errors as one list of "field: message" under its index, the contract's
        shape for lists (``errors.decisions["3"]``)."""
        messages = error.messages
        items = messages.get("decisions") if isinstance(messages, dict) else None
        if isinstance(messages, dict) and isinstance(items, dict):
            flat: dict[Any, list[str]] = {}
            for index, problem in items.items():
                flat[str(index)] = (
                    [f"{field}: {m}" for field, ms in problem.items() for m in ms]
                    if isinstance(problem, dict)
                    else list(problem)
                )
            raise ValidationError({**messages, "decisions": flat})
        raise error


class PageArgsSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # cache-busting and tracking parameters are harmless

    limit = QueryInteger(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(
        load_default=None,
        validate=validate.Regexp(_whole(ID_PATTERN), error="Not a valid cursor."),
    )


class ListingArgsSchema(PageArgsSchema):
    article_id = fields.String(load_default=None, validate=_article_id)
    # Hide the comments other moderators have claimed (store/claims.py).
    unclaimed = QueryBoolean(load_default=False)

    reason = fields.String(
        load_default=None,
        validate=validate.Regexp(r"\A[a-z_]{1,40}\Z", error="Not a reason code."),
    )

    @validates_schema
    def _one_filter(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("article_id") and data.get("reason"):
            raise ValidationError(
                "Filter by article_id or by reason, not both.", field_name="reason"
            )


class QueueArgsSchema(ListingArgsSchema):
    # pending: the queue; reported: what readers reported past the policy's threshold.
    view = fields.String(load_default="pending", validate=validate.OneOf(["pending", "reported"]))

    @validates_schema
    def _reported_unfiltered(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("view") == "reported" and (data.get("article_id") or data.get("reason")):
            raise ValidationError(
                "The reported view takes no article_id or reason filter.", field_name="view"
            )


class CountsArgsSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    article_id = fields.List(
        fields.String(validate=_article_id),
        required=True,
        validate=validate.Length(min=1, max=100),
    )


class CountsRequestSchema(ObjectSchema):
    """The POST form of a counts query, for lists too long for a URL."""

    article_id = fields.List(
        fields.String(validate=_article_id),
        required=True,
        validate=validate.Length(min=1, max=100),
    )


def make_submission_schemas(
    check_deliverability: bool, *, remember_emails: bool = False
) -> tuple[Schema, Schema]:
    """The JSON and form submission schemas with this deployment's email checking
    (``remember_emails``: each distinct address checked once, for an import)."""
    email = (RepeatedEmailAddress if remember_emails else EmailAddress)(
        required=True,
        check_deliverability=check_deliverability,
        pre_load=clean_text,
        validate=validate.Length(max=254),
    )
    json_schema = SubmissionSchema.from_dict({"email": email}, name="Submission")
    form_schema = FormSubmissionSchema.from_dict({"email": email}, name="FormSubmission")
    return json_schema(), form_schema()


# A term GET /policy showed as "hash:..." (an email or IP address term, stored hashed: see
# service/policy_terms.py) may be sent back as it is, but only as such a hash.
_hashed_term = re.compile(r"\Ahash:[0-9a-f]{32}\Z")


def _well_formed_hash(term: str) -> None:
    if term.startswith("hash:") and not _hashed_term.match(term):
        raise ValidationError("A hash: term must be one that GET /moderation/policy showed.")


_term = fields.String(
    pre_load=clean_text,
    validate=[validate.Length(min=1, max=100), no_control_characters, _well_formed_hash],
)


class PolicySchema(ObjectSchema):
    """The moderation policy document (GET and PUT /moderation/policy). A PUT replaces the
    whole policy; settings it leaves out take their defaults."""

    auto_approve = fields.String(validate=validate.OneOf(["trusted", "all", "none"]))
    trusted_days = WholeNumber(validate=validate.Range(min=1, max=3650))
    profanity_action = fields.String(validate=validate.OneOf(["hold", "spam", "off"]))
    link_action = fields.String(validate=validate.OneOf(["hold", "spam", "off"]))
    link_threshold = WholeNumber(validate=validate.Range(min=1, max=1000))
    block_terms = fields.List(_term, validate=validate.Length(max=1000))
    block_action = fields.String(validate=validate.OneOf(["hold", "spam"]))
    hold_terms = fields.List(_term, validate=validate.Length(max=1000))
    honeypot = JsonBoolean()
    duplicate_window_seconds = WholeNumber(validate=validate.Range(min=0, max=30 * 86400))
    flood_interval_seconds = WholeNumber(validate=validate.Range(min=0, max=3600))
    flood_hourly_cap = WholeNumber(validate=validate.Range(min=0, max=100_000))
    report_threshold = WholeNumber(validate=validate.Range(min=1, max=1000))
    report_action = fields.String(validate=validate.OneOf(["unpublish", "flag"]))
    edit_window_seconds = WholeNumber(validate=validate.Range(min=0, max=30 * 86400))
    campaign_threshold = WholeNumber(validate=validate.Range(min=0, max=1000))
    campaign_window_seconds = WholeNumber(validate=validate.Range(min=60, max=30 * 86400))


class ArticleSettingsSchema(ObjectSchema):
    open = JsonBoolean(required=True)


class StatusListArgsSchema(ListingArgsSchema):
    status = fields.String(required=True, validate=validate.OneOf(STATUS_VALUES))


class ExportRequestSchema(ObjectSchema):
    email = EmailAddress(required=True, pre_load=clean_text, validate=validate.Length(max=254))


class EraseRequestSchema(ExportRequestSchema):
    # delete: every comment goes. anonymise: published comments stay, with no name, email or
    # website, so the threads they belong to still read; the others go.
    mode = fields.String(required=True, validate=validate.OneOf(["delete", "anonymise"]))


class ReportSchema(ObjectSchema):
    """A reader's report of a published comment."""

    reason = fields.String(required=True, validate=validate.OneOf(REPORT_REASONS))
    note = fields.String(
        load_default="",
        pre_load=clean_text,
        validate=[validate.Length(max=1000), no_control_characters],
    )


class EditSchema(ObjectSchema):
    """An author's edit of their comment: any of its words, with the submission's rules; at
    least one. ``website: null`` removes the website."""

    name = fields.String(
        pre_load=clean_text,
        validate=[validate.Length(min=1, max=100), no_control_characters, name_characters],
    )
    comment = fields.String(
        pre_load=clean_comment,
        validate=[validate.Length(min=1, max=5000), no_control_characters, comment_characters],
    )
    website = fields.Url(
        allow_none=True,
        schemes={"http", "https"},
        pre_load=blank_to_none,
        validate=[validate.Length(max=500), web_url],
    )

    @validates_schema
    def _something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("Send at least one of name, comment, website.", "_schema")
