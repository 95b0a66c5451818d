"""Each rule of the pure policy, with no Redis and no HTTP."""

from __future__ import annotations

import pytest

from service.moderation.policy import (
    DAY_MS,
    Action,
    AutoApprove,
    Facts,
    Policy,
    Submission,
    Verdict,
    duplicate_fingerprint,
    evaluate,
    evaluate_standings,
    normalize,
    policy_from_document,
    policy_to_document,
    trusted_since,
)
from service.moderation.profanity import default_matcher

NOW = 1_800_000_000_000
TRUSTED = Facts(now_ms=NOW, last_approved_ms=NOW - DAY_MS)
NEWCOMER = Facts(now_ms=NOW)


def judge(
    comment: str = "A fair point, well made.",
    *,
    facts: Facts = TRUSTED,
    policy: Policy | None = None,
    **fields: str | None,
) -> Verdict:
    values: dict[str, str | None] = {
        "name": "Ann",
        "email": "ann@example.com",
        "website": None,
        "client_ip": "198.51.100.7",
    }
    values.update(fields)
    submission = Submission(
        comment=comment,
        name=str(values["name"]),
        email=str(values["email"]),
        website=values["website"],
        client_ip=str(values["client_ip"]),
        honeypot=values.get("honeypot"),
    )
    return evaluate(submission, facts, policy or Policy(), default_matcher())


def codes(verdict: Verdict) -> list[str]:
    return [r.code for r in verdict.reasons]


def test_a_clean_comment_from_a_trusted_commenter_is_approved() -> None:
    verdict = judge()
    assert verdict.action is Action.APPROVE and verdict.reasons == ()
    assert verdict.status == "approved"


def test_first_time_commenters_are_held() -> None:
    verdict = judge(facts=NEWCOMER)
    assert verdict.action is Action.HOLD and codes(verdict) == ["first_comment"]


@pytest.mark.parametrize(
    ("facts", "trusted"),
    [
        (Facts(now_ms=NOW, last_approved_ms=NOW - 89 * DAY_MS), True),
        (Facts(now_ms=NOW, last_approved_ms=NOW - 91 * DAY_MS), False),
        (
            Facts(now_ms=NOW, last_approved_ms=NOW - DAY_MS, last_negative_ms=NOW - 5 * DAY_MS),
            False,
        ),
        (
            Facts(now_ms=NOW, last_approved_ms=NOW - DAY_MS, last_negative_ms=NOW - 95 * DAY_MS),
            True,
        ),
    ],
)
def test_trust_window(facts: Facts, trusted: bool) -> None:
    assert (judge(facts=facts).action is Action.APPROVE) is trusted


def test_auto_approve_modes() -> None:
    assert judge(facts=NEWCOMER, policy=Policy(auto_approve=AutoApprove.ALL)).action is (
        Action.APPROVE
    )
    none = judge(policy=Policy(auto_approve=AutoApprove.NONE))
    assert none.action is Action.HOLD and codes(none) == ["pre_moderation"]


def test_honeypot_is_spam() -> None:
    verdict = judge(honeypot="http://cheap.example")
    assert verdict.action is Action.SPAM and codes(verdict) == ["honeypot"]
    assert judge(honeypot="x", policy=Policy(honeypot=False)).action is Action.APPROVE


@pytest.mark.parametrize("text", ["What a load of shit.", "SHIT happens", "sh1t!", "bull-shit"])
def test_profanity_holds_and_names_the_terms(text: str) -> None:
    verdict = judge(text)
    assert verdict.action is Action.HOLD and codes(verdict) == ["profanity"]
    assert "matched:" in verdict.reasons[0].detail
    assert verdict.reasons[0].detail.split("matched: ")[1]


@pytest.mark.parametrize("text", ["A classic assessment of Scunthorpe.", "Cocktail hour"])
def test_profanity_has_no_scunthorpe_problem(text: str) -> None:
    assert judge(text).action is Action.APPROVE


def test_profanity_action_is_configurable() -> None:
    assert judge("shit", policy=Policy(profanity=Action.SPAM)).action is Action.SPAM
    assert judge("shit", policy=Policy(profanity=None)).action is Action.APPROVE


def test_links_hold_at_the_threshold_and_ignore_the_website_field() -> None:
    one = judge("See https://a.example for more", website="https://ann.example")
    assert one.action is Action.APPROVE
    two = judge("See https://a.example and www.b.example")
    assert two.action is Action.HOLD and two.reasons[0].detail == "2 links in the comment"
    assert judge("https://a.example", policy=Policy(link_threshold=1)).action is Action.HOLD
    assert judge("http://a.example http://b.example", policy=Policy(links=None)).action is (
        Action.APPROVE
    )


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"comment": "Play at CASINO now"}, "'casino' in comment"),
        ({"comment": "Play at ｃａｓｉｎｏ now"}, "'casino' in comment"),  # fullwidth: NFKC
        ({"comment": "Play at cas\u200bino now"}, "'casino' in comment"),  # zero-width split
        ({"name": "Casino Shop"}, "'casino' in name"),
        # About the email or the client address, a reason names the rule, not the value.
        ({"email": "seller@casino.example"}, "the email matches a term of the block list"),
        ({"website": "https://casino.example/play"}, "'casino' in website"),
    ],
)
def test_block_list_matches_every_field_after_normalisation(
    fields: dict[str, str], detail: str
) -> None:
    comment = fields.pop("comment", "Nice.")
    verdict = judge(
        comment,
        policy=Policy(block_terms=("casino",)),
        name=fields.get("name", "Ann"),
        email=fields.get("email", "ann@example.com"),
        website=fields.get("website"),
    )
    assert verdict.action is Action.SPAM and codes(verdict) == ["blocked_term"]
    assert verdict.reasons[0].detail == detail


def test_hashed_terms_match_the_hashes_the_caller_computed_exactly() -> None:
    policy = Policy(block_terms=("hash:" + "e" * 32,), hold_terms=("hash:" + "1" * 32,))

    def judged(email_hash: str | None, ip_hash: str | None) -> Verdict:
        submission = Submission(
            name="Ann",
            email="ann@example.com",
            comment="Hello.",
            website=None,
            client_ip="198.51.100.7",
            email_term_hash=email_hash,
            ip_term_hash=ip_hash,
        )
        return evaluate(submission, TRUSTED, policy, default_matcher())

    blocked = judged("e" * 32, None)
    assert blocked.action is Action.SPAM
    assert blocked.reasons[0].detail == "the email is on the block list"
    held = judged("f" * 32, "1" * 32)
    assert held.action is Action.HOLD
    assert [r.detail for r in held.reasons] == ["the client address is on the hold list"]
    assert judged("f" * 32, "2" * 32).action is Action.APPROVE
    assert judged(None, None).action is Action.APPROVE  # "hash:..." is no word term


def test_block_list_matches_client_ip_and_respects_word_boundaries() -> None:
    policy = Policy(block_terms=("198.51.100.7", "ass"))
    assert codes(judge(policy=policy)) == ["blocked_term"]
    clean = judge("A classic assessment, class.", policy=policy, client_ip="203.0.113.1")
    assert clean.action is Action.APPROVE


def test_hold_list_holds_and_spam_outranks_hold() -> None:
    policy = Policy(hold_terms=("crypto",), block_terms=("casino",))
    assert judge("crypto tips", policy=policy).action is Action.HOLD
    both = judge("crypto casino", policy=policy, facts=NEWCOMER)
    assert both.action is Action.SPAM
    assert codes(both) == ["blocked_term", "hold_term", "first_comment"]


def test_block_action_can_hold_instead() -> None:
    policy = Policy(block_terms=("casino",), block_action=Action.HOLD)
    assert judge("casino", policy=policy).action is Action.HOLD


def test_normalisation_and_fingerprint() -> None:
    assert normalize("ＳＨＯＵＴ\u200b") == "shout"
    assert duplicate_fingerprint("  Hello \n\n WORLD ") == duplicate_fingerprint("hello world")


def test_policy_document_round_trip() -> None:
    policy = Policy(
        profanity=None,
        links=Action.SPAM,
        block_terms=("a", "b"),
        auto_approve=AutoApprove.NONE,
        flood_hourly_cap=0,
    )
    assert policy_from_document(policy_to_document(policy)) == policy
    assert policy_from_document({}) == Policy()


@pytest.mark.parametrize("mode", list(AutoApprove))
@pytest.mark.parametrize(
    ("comment", "fields"),
    [
        ("A fair point, well made.", {}),
        ("What a load of shit.", {}),
        ("See http://a.example and www.b.example for more.", {}),
        ("Buy now", {"honeypot": "filled"}),
        ("A fair point", {"name": "casino bot"}),
    ],
)
def test_the_verdict_for_each_standing_is_what_evaluate_gives(
    mode: AutoApprove, comment: str, fields: dict[str, str]
) -> None:
    """The insert picks one of these by the stored record; each must be exactly the verdict
    evaluate() gives with the matching facts."""
    policy = Policy(auto_approve=mode, block_terms=("casino",))
    submission = Submission(
        comment=comment,
        name=fields.get("name", "Ann"),
        email="ann@example.com",
        website=None,
        client_ip="198.51.100.7",
        honeypot=fields.get("honeypot"),
    )
    verdicts = evaluate_standings(submission, NOW, policy, default_matcher())
    assert verdicts.untrusted == evaluate(submission, NEWCOMER, policy, default_matcher())
    if mode is AutoApprove.TRUSTED:
        assert verdicts.trusted == evaluate(submission, TRUSTED, policy, default_matcher())
        assert trusted_since(NOW, policy) == NOW - policy.trusted_days * DAY_MS
    else:
        # Standing changes nothing, so the store need not read it.
        assert verdicts.trusted is None
        assert evaluate(submission, TRUSTED, policy, default_matcher()) == verdicts.untrusted
