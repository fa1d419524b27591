"""The compliance exam (A12): shipped in both languages, a paper drawn at random per attempt and graded against
the questions it drew, a cool-down after a failed attempt, and a bank ops edit."""

from __future__ import annotations

from datetime import timedelta

from tuangou.merchants.exam_bank import DEFAULT_QUESTIONS


def key(stage):
    return {q["id"]: q for q in stage.client.get("/api/v1/exam-questions", headers=stage.ops).json()["items"]}


def draw(stage, merchant, language="zh-CN"):
    return stage.client.post("/api/v1/exam-papers", headers=merchant, json={"language": language})


def hand_in(stage, merchant, paper, right=None):
    """Answer the paper: every question right, or only the first `right` ones."""
    answers = key(stage)
    chosen = {}
    for n, q in enumerate(paper["questions"]):
        correct = answers[q["id"]]["correct_index"]
        chosen[str(q["id"])] = correct if right is None or n < right else (correct + 1) % len(q["options"])
    return stage.client.post("/api/v1/exam-attempts", headers=merchant, json={"answers": chosen})


def test_a_fresh_installation_ships_the_exam_in_both_languages(stage):
    # given a fresh installation where ops never added a question
    _, zh = stage.merchant("Lao Wang")
    _, en = stage.merchant("Berry Farm")
    # when merchants draw papers in each language
    zh_paper, en_paper = draw(stage, zh).json(), draw(stage, en, "en").json()
    # then each gets five questions of the shipped bank in its language, without the answers
    assert len(zh_paper["questions"]) == len(en_paper["questions"]) == 5
    assert {q["language"] for q in zh_paper["questions"]} == {"zh-CN"}
    assert {q["language"] for q in en_paper["questions"]} == {"en"}
    assert all("correct_index" not in q for q in zh_paper["questions"])
    # and the bank was loaded once, however often it is read
    bank = key(stage)
    assert len(key(stage)) == len(bank) == 2 * len(DEFAULT_QUESTIONS)
    assert sum(q["language"] == "en" for q in bank.values()) == len(DEFAULT_QUESTIONS)
    # and a merchant can pass it, which is recorded with the questions it drew
    result = hand_in(stage, en, en_paper).json()
    assert result["passed"] and result["percent"] == 100
    merchant_id = stage.client.get("/api/v1/me", headers=en).json()["merchant_id"]
    attempts = stage.client.get(f"/api/v1/merchants/{merchant_id}/exam-attempts", headers=en).json()["items"]
    assert [a["question_ids"] for a in attempts] == [[q["id"] for q in en_paper["questions"]]]


def test_papers_are_drawn_at_random_and_graded_against_what_they_drew(stage):
    # given six merchants drawing papers of five from the bank
    merchants = [stage.merchant(f"Shop {n}")[1] for n in range(6)]
    papers = [draw(stage, m).json() for m in merchants]
    # then they do not all get the same questions, and drawing again gives the open paper back
    assert len({tuple(sorted(q["id"] for q in p["questions"])) for p in papers}) > 1
    assert draw(stage, merchants[0]).json()["id"] == papers[0]["id"]
    # when ops retire a question the first merchant drew, that merchant is still graded on its paper
    drawn = papers[0]["questions"][0]["id"]
    stage.client.post(f"/api/v1/exam-questions/{drawn}/retire", headers=stage.ops, json={"reason": "outdated"})
    result = hand_in(stage, merchants[0], papers[0]).json()
    assert (result["correct"], result["total"], result["passed"]) == (5, 5, True)
    # and 3 of 5 right (60%) fails the 80% pass mark
    failed = hand_in(stage, merchants[1], papers[1], right=3).json()
    assert (failed["percent"], failed["passed"]) == (60, False)
    # and answers to questions that were not drawn count for nothing
    other = [q for q in key(stage) if q not in {x["id"] for x in papers[2]["questions"]}][:5]
    r = stage.client.post("/api/v1/exam-attempts", headers=merchants[2],
                          json={"answers": {str(q): 0 for q in other}}).json()
    assert r["total"] == 5 and r["correct"] == 0


def test_a_failed_attempt_waits_for_the_cool_down(stage):
    merchant_id, merchant = stage.merchant()
    email = f"m{stage._n}@test.tuangou"
    # handing in before drawing is refused
    r = stage.client.post("/api/v1/exam-attempts", headers=merchant, json={"answers": {}})
    assert (r.status_code, r.json()["code"]) == (409, "exam_not_drawn")
    # when the merchant fails
    paper = draw(stage, merchant).json()
    failed = hand_in(stage, merchant, paper, right=0).json()
    assert not failed["passed"] and failed["retake_from"] == (stage.clock.now() + timedelta(hours=24)).isoformat()
    # then the same paper cannot be handed in again, and a new one waits 24 hours (a policy number)
    again = stage.client.post("/api/v1/exam-attempts", headers=merchant,
                              json={"answers": {}, "paper_id": paper["id"]})
    assert (again.status_code, again.json()["code"]) == (409, "exam_submitted")
    early = draw(stage, merchant)
    assert (early.status_code, early.json()["code"]) == (409, "exam_cooldown")
    assert early.json()["retry_at"] == failed["retake_from"]
    stage.clock.advance(timedelta(hours=23))
    assert draw(stage, merchant).json()["code"] == "exam_cooldown"
    stage.clock.advance(timedelta(hours=1))
    merchant, stage.ops = stage.login(email), stage.login("ops@test.tuangou")
    assert draw(stage, merchant).status_code == 201
    # and ops may shorten the cool-down
    stage.client.put("/api/v1/accountability-policy", headers=stage.ops,
                     json={"changes": {"exam_retake_cooldown_hours": 0}, "reason": "exam week"})
    hand_in(stage, merchant, draw(stage, merchant).json(), right=0)
    assert draw(stage, merchant).status_code == 201


def test_ops_edit_the_bank(stage):
    _, merchant = stage.merchant()
    # ops add a question in English and retire every shipped English one
    new = stage.client.post("/api/v1/exam-questions", headers=stage.ops, json={
        "text": "Sell past the cap?", "options": ["yes", "no"], "correct_index": 1, "language": "en",
        "reason": "a short exam for the pilot"})
    assert new.status_code == 201 and new.json()["language"] == "en"
    for q in key(stage).values():
        if q["language"] == "en" and q["id"] != new.json()["id"]:
            stage.client.post(f"/api/v1/exam-questions/{q['id']}/retire", headers=stage.ops, json={"reason": "pilot"})
    assert stage.client.post("/api/v1/exam-questions", headers=merchant, json={
        "text": "mine", "options": ["a", "b"], "correct_index": 0, "reason": "x"}).status_code == 403
    # then an English paper holds just that question; the Chinese bank is untouched
    paper = draw(stage, merchant, "en").json()
    assert [q["text"] for q in paper["questions"]] == ["Sell past the cap?"]
    listed = stage.client.get("/api/v1/exam-questions", headers=merchant, params={"language": "zh-CN"}).json()
    assert len(listed["items"]) == len(DEFAULT_QUESTIONS)
