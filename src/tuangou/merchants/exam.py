"""The compliance exam (A12): a bank shipped in both languages (exam_bank.py) that ops edit, a paper drawn
at random per attempt and graded against the questions it drew, and a cool-down after a failed attempt.

Each function is one unit of work, like service.py.
"""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import func, select, update

from tuangou.core.audit import record_audit, require_reason
from tuangou.core.auth import Principal, Role
from tuangou.core.db import UnitOfWork, insert_ignore
from tuangou.core.errors import Conflict, NotFound, ValidationFailed
from tuangou.core.outbox import record_event
from tuangou.merchants import exam_bank, rules
from tuangou.merchants.models import ExamAttempt, ExamQuestion
from tuangou.merchants.service import load_policy, lock_standing, refresh_standing

# ---- the compliance exam ------------------------------------------------------------------------

def _question_view(q: ExamQuestion, with_answer: bool) -> dict[str, Any]:
    view = {"id": q.id, "text": q.text, "options": q.options, "active": q.active, "language": q.language}
    return {**view, "correct_index": q.correct_index} if with_answer else view


def ensure_default_bank(uow: UnitOfWork) -> int:
    """Load the shipped exam (both languages) when the bank has never held a question; idempotent and
    safe to race (`seed_key` is unique). Returns the questions inserted."""
    with uow:
        if uow.session.scalar(select(ExamQuestion.id).limit(1)) is not None:
            return 0
        added = 0
        for key, correct, texts in exam_bank.DEFAULT_QUESTIONS:
            for language, (text, options) in texts.items():
                added += insert_ignore(uow.session, ExamQuestion.__table__, {
                    "text": text, "options": options, "correct_index": correct, "active": True,
                    "created_at": uow.now, "language": language, "seed_key": f"{key}:{language}"}, ["seed_key"])
        uow.commit()
        return added


def _writer(uow: UnitOfWork) -> UnitOfWork:
    return UnitOfWork(uow.db, uow.clock)


def add_question(uow: UnitOfWork, actor: Principal, *, text: str, options: list[str], correct_index: int,
                 reason: str, language: str = "zh-CN") -> dict[str, Any]:
    actor.require(Role.OPS)
    if not text.strip() or not 2 <= len(options) <= 8 or any(not o.strip() for o in options):
        raise ValidationFailed("a question needs text and 2 to 8 non-empty options")
    if not 0 <= correct_index < len(options):
        raise ValidationFailed("correct_index must point at one of the options")
    if language not in exam_bank.LANGUAGES:
        raise ValidationFailed(f"language must be one of {', '.join(exam_bank.LANGUAGES)}")
    require_reason(reason)
    ensure_default_bank(_writer(uow))  # the shipped questions first, so an added one does not hide them
    with uow:
        q = ExamQuestion(text=text, options=options, correct_index=correct_index, active=True, created_at=uow.now,
                         language=language)
        uow.session.add(q)
        uow.session.flush()
        record_audit(uow.session, actor_id=actor.user_id, actor_role="ops", action="add_exam_question",
                     target=f"exam_question:{q.id}", reason=reason, now=uow.now)
        uow.commit()
        return _question_view(q, True)


def retire_question(uow: UnitOfWork, actor: Principal, question_id: int, reason: str) -> dict[str, Any]:
    actor.require(Role.OPS)
    require_reason(reason)
    with uow:
        q = uow.session.get(ExamQuestion, question_id)
        if q is None:
            raise NotFound(f"question {question_id} not found")
        q.active = False
        record_audit(uow.session, actor_id=actor.user_id, actor_role="ops", action="retire_exam_question",
                     target=f"exam_question:{q.id}", reason=reason, now=uow.now)
        uow.commit()
        return _question_view(q, True)


def list_questions(uow: UnitOfWork, actor: Principal, language: str | None = None) -> list[dict[str, Any]]:
    """Ops see the answers and retired questions; merchants see the active bank only (a paper is drawn
    from it per attempt)."""
    ensure_default_bank(_writer(uow))
    with uow:
        q = select(ExamQuestion).order_by(ExamQuestion.id)
        if actor.role != Role.OPS:
            q = q.where(ExamQuestion.active)
        if language:
            q = q.where(ExamQuestion.language == language)
        return [_question_view(x, actor.role == Role.OPS) for x in uow.session.scalars(q)]


def _paper_view(uow: UnitOfWork, a: ExamAttempt, policy: rules.AccountabilityPolicy) -> dict[str, Any]:
    by_id = {q.id: q for q in uow.session.scalars(select(ExamQuestion).where(ExamQuestion.id.in_(a.question_ids)))}
    return {"id": a.id, "language": a.language, "drawn_at": a.at.isoformat(),
            "pass_percent": policy.exam_pass_percent,
            "questions": [_question_view(by_id[qid], False) for qid in a.question_ids if qid in by_id]}


def _open_paper(uow: UnitOfWork, merchant_id: int) -> ExamAttempt | None:
    return uow.session.scalars(select(ExamAttempt).where(ExamAttempt.merchant_id == merchant_id,
                                                         ExamAttempt.submitted_at.is_(None))
                               .order_by(ExamAttempt.id.desc()).limit(1)).first()


def draw_paper(uow: UnitOfWork, actor: Principal, language: str = "zh-CN") -> dict[str, Any]:
    """A merchant starts the exam: questions drawn at random from the active bank in its language. The open
    paper is answered again until it is handed in; after a failed attempt the next waits for the cool-down."""
    actor.require(Role.MERCHANT)
    assert actor.merchant_id is not None
    if language not in exam_bank.LANGUAGES:
        raise ValidationFailed(f"language must be one of {', '.join(exam_bank.LANGUAGES)}")
    ensure_default_bank(_writer(uow))
    with uow:
        policy = load_policy(uow)
        lock_standing(uow, actor.merchant_id)  # one paper at a time per merchant
        open_paper = _open_paper(uow, actor.merchant_id)
        if open_paper is not None:
            return _paper_view(uow, open_paper, policy)
        last_failed = uow.session.scalar(select(func.max(ExamAttempt.submitted_at)).where(
            ExamAttempt.merchant_id == actor.merchant_id, ExamAttempt.submitted_at.is_not(None),
            ExamAttempt.passed.is_(False)))
        retry = rules.retake_at(last_failed, policy)
        if retry is not None and retry > uow.now:
            raise Conflict(f"the exam can be taken again from {retry.isoformat()}", code="exam_cooldown",
                           retry_at=retry.isoformat())
        bank = list(uow.session.scalars(select(ExamQuestion.id).where(ExamQuestion.active,
                                                                      ExamQuestion.language == language)))
        if not bank:
            raise Conflict("the exam has no questions in this language yet", code="exam_empty")
        drawn = rules.draw_questions(bank, policy.exam_questions_per_attempt, random.SystemRandom())
        paper = ExamAttempt(merchant_id=actor.merchant_id, user_id=actor.user_id, answers={}, correct=0,
                            total=len(drawn), passed=False, at=uow.now, question_ids=drawn, language=language)
        uow.session.add(paper)
        uow.session.flush()
        uow.commit()
        return _paper_view(uow, paper, policy)


def current_paper(uow: UnitOfWork, actor: Principal) -> dict[str, Any] | None:
    """The merchant's open paper, if it drew one and has not handed it in."""
    actor.require(Role.MERCHANT)
    assert actor.merchant_id is not None
    with uow:
        paper = _open_paper(uow, actor.merchant_id)
        return _paper_view(uow, paper, load_policy(uow)) if paper is not None else None


def take_exam(uow: UnitOfWork, actor: Principal, answers: dict[int, int], paper_id: int | None = None
              ) -> dict[str, Any]:
    """A merchant hands in its open paper, graded against the questions it drew; a pass may lift traffic
    limits at once. A paper is graded once."""
    actor.require(Role.MERCHANT)
    assert actor.merchant_id is not None
    with uow:
        policy = load_policy(uow)
        paper = _open_paper(uow, actor.merchant_id) if paper_id is None else uow.session.get(ExamAttempt, paper_id)
        if paper is None or paper.merchant_id != actor.merchant_id:
            raise Conflict("draw a paper first (POST /exam-papers)", code="exam_not_drawn")
        key = {q.id: q.correct_index for q in uow.session.scalars(
            select(ExamQuestion).where(ExamQuestion.id.in_(paper.question_ids)))}
        result = rules.grade(key, answers, policy.exam_pass_percent)
        handed_in = uow.session.execute(update(ExamAttempt).where(
            ExamAttempt.id == paper.id, ExamAttempt.submitted_at.is_(None)).values(
            answers={str(k): v for k, v in answers.items() if k in key}, correct=result.correct,
            total=result.total, passed=result.passed, at=uow.now, submitted_at=uow.now)).rowcount  # type: ignore[attr-defined]
        if not handed_in:
            raise Conflict(f"paper {paper.id} was already handed in", code="exam_submitted")
        record_event(uow.session, "ExamTaken", {"attempt_id": paper.id, "passed": result.passed}, uow.now,
                     merchant_id=actor.merchant_id)
        standing = refresh_standing(uow, actor.merchant_id, policy) if result.passed else None
        uow.commit()
        retry = None if result.passed else rules.retake_at(uow.now, policy)
        return {"id": paper.id, "correct": result.correct, "total": result.total, "percent": result.percent,
                "pass_percent": policy.exam_pass_percent, "passed": result.passed,
                "retake_from": retry.isoformat() if retry else None,
                "limited": standing.limited if standing else None,
                "recovery_steps": rules.recovery_steps(standing, policy, uow.now) if standing else None}


def list_attempts(uow: UnitOfWork, actor: Principal, merchant_id: int) -> list[dict[str, Any]]:
    actor.require_merchant(merchant_id)
    with uow:
        return [{"id": a.id, "correct": a.correct, "total": a.total, "passed": a.passed, "at": a.at.isoformat(),
                 "question_ids": a.question_ids, "language": a.language}
                for a in uow.session.scalars(select(ExamAttempt).where(ExamAttempt.merchant_id == merchant_id,
                                                                       ExamAttempt.submitted_at.is_not(None))
                                             .order_by(ExamAttempt.id))]
