"""Rendering of the alert mails: wording, numbers, escaping, ordering, headers (no database, no server)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from email import policy
from email.parser import BytesParser

from market_access.alerts import compose
from market_access.alerts.compose import DeptRow, Item, QualityRun, RuleResult
from market_access.settings import BEIJING

RUN = QualityRun(
    "qr-1", datetime(2026, 11, 21, 3, tzinfo=BEIJING), None, date(2026, 11, 21), "succeeded", None
)


def result(
    rule_id="r1", severity="blocking", failed=12, evaluated=480, share=Decimal("0.025"), samples=(), **kw
):
    kw.setdefault("category", "有效性")
    kw.setdefault("asset", "penalties")
    kw.setdefault("source", "market_supervision")
    return RuleResult(
        rule_id=rule_id, dept_code="113604210795604218",
        level="row", severity=severity, success=False, evaluated_count=evaluated,
        failed_count=failed, failed_share=share, sample_record_ids=tuple(samples), **kw,
    )  # fmt: skip


def dept_mail(items, **kw):
    args = dict(
        run=RUN, day=date(2026, 11, 21), dept_code="113604210795604218", dept_name="区市场监督管理局",
        to=["scjgj@demo-county.gov.cn"], items=items, evaluated=5, ndrc_name="区发展和改革局",
        ndrc_addrs=["fgj@demo-county.gov.cn"], escalate_after=3, sender="区数据管理局 市场准入效能评估数据平台",
    )  # fmt: skip
    args.update(kw)
    return compose.department_mail(**args)


def item(r, days=0, escalated=False):
    return Item(r, date(2026, 11, 21 - days), days, escalated, None)


def test_percentages_by_hand():
    assert compose.pct(0.025) == "2.50%"  # 12 / 480
    assert compose.pct(1 / 3) == "33.33%"
    assert compose.pct(1.0) == "100.00%"
    assert compose.pct(0.00001) == "<0.01%"  # 1 in 100 000 is not "0.00%"
    assert compose.pct(0) == "0.00%"
    assert compose.pct(None) == "—"


def test_share_falls_back_to_counts_when_the_engine_gives_none():
    assert result(failed=3, evaluated=200, share=None).share == 0.015
    assert result(failed=3, evaluated=0, share=None).share is None


def test_fingerprint_ignores_sample_order_but_not_counts():
    a = result(samples=["A", "B"])
    assert a.fingerprint == result(samples=["B", "A"]).fingerprint
    assert a.fingerprint != result(samples=["A", "B"], failed=13).fingerprint
    assert a.fingerprint != result(samples=["A", "C"]).fingerprint


def test_blocking_first_then_share():
    w_big = result("w_big", "warning", share=Decimal("0.9"))
    b_small = result("b_small", "blocking", share=Decimal("0.01"))
    b_big = result("b_big", "blocking", share=Decimal("0.5"))
    mail = dept_mail([item(w_big), item(b_small), item(b_big)])
    assert mail.rule_ids == ["b_big", "b_small", "w_big"]
    assert mail.subject == "【数据质量告警】区市场监督管理局 2026-11-21: 3 条规则未通过 (阻断 2)"


def test_everything_from_data_is_escaped_in_html_only():
    r = result(description_zh='编号 <script>alert("x")</script> & 更多', fix_zh="<b>改</b>", samples=["A<1>"])
    mail = dept_mail([item(r)])
    assert "<script>" not in mail.html and "&lt;script&gt;" in mail.html and "&amp; 更多" in mail.html
    assert "&lt;b&gt;改&lt;/b&gt;" in mail.html and "A&lt;1&gt;" in mail.html
    assert '编号 <script>alert("x")</script> & 更多' in mail.text  # plain text stays as written


def test_at_most_ten_samples_and_personal_numbers_are_masked():
    r = result(samples=[f"S{i}" for i in range(12)])
    assert r.samples == tuple(f"S{i}" for i in range(10))
    masked = result(samples=["11010519491231002X", "+86 138-0013-8000", "CF-1"]).samples
    assert masked == ("110***********002X", "138****8000", "CF-1")


def test_escalation_copies_the_ndrc_and_says_so():
    mail = dept_mail([item(result(), days=3, escalated=True), item(result("r2", "warning"))])
    assert mail.kind == "escalation" and mail.cc == [("区发展和改革局", "fgj@demo-county.gov.cn")]
    assert mail.subject.endswith(" · 已抄送区发展和改革局")
    assert "已持续 3 天, 抄送区发展和改革局" in mail.text and "已持续 3 天, 抄送区发展和改革局" in mail.html
    assert "本邮件已抄送区发展和改革局：r1。" in mail.text


def test_the_ndrc_is_not_copied_on_its_own_mail():
    mail = dept_mail(
        [item(result(), days=4, escalated=True)], to=["fgj@demo-county.gov.cn"], dept_name="区发展和改革局"
    )
    assert mail.kind == "dept" and mail.cc == [] and "抄送区发展和改革局：" not in mail.text


def test_docs_links():
    assert compose.docs_link("validations/a.html", "/srv/docs") == "file:///srv/docs/validations/a.html"
    assert (
        compose.docs_link("validations/a.html", "https://dq.local/docs/")
        == "https://dq.local/docs/validations/a.html"
    )
    assert compose.docs_link("https://x/y.html", "/srv") == "https://x/y.html"
    assert (
        compose.docs_link("/srv/数据 文档/index.html")
        == "file:///srv/%E6%95%B0%E6%8D%AE%20%E6%96%87%E6%A1%A3/index.html"
    )
    assert compose.docs_link(None, "/srv") is None


def test_bureau_summary_lists_every_department_failing_first():
    worst = result("b_big", "blocking", share=Decimal("0.5"))
    rows = [
        DeptRow("1", "区教育局", 4, 0, 0, None, "none"),
        DeptRow("2", "区市场监督管理局", 5, 2, 1, worst, "sent"),
        DeptRow("3", "区统计局", 0, 0, 0, None, "not_evaluated"),
    ]
    mail = compose.bureau_mail(run=RUN, day=date(2026, 11, 21), bureau_name="区数据管理局", to=["sjglj@x.cn"],
                               rows=rows, ndrc_name="区发展和改革局", sender="区数据管理局 平台")  # fmt: skip
    assert mail.subject == "【数据质量汇总】2026-11-21: 1 个部门 2 条规则未通过 (阻断 1)"
    lines = [line for line in mail.text.splitlines() if line[:2] in ("1.", "2.", "3.")]
    assert lines[0].startswith(
        "1. 区市场监督管理局：检查 5 条，未通过 2 条（阻断 1 条）；最严重：b_big（阻断，12 条，50.00%）"
    )
    assert lines[1].startswith("2. 区教育局") and len(lines) == 2
    assert (
        "本次未检查的部门（1 个）：区统计局" in mail.text
        and "本次未检查的部门（1 个）：区统计局" in mail.html
    )
    assert "2 个部门共检查 9 条规则" in mail.text


def test_headers_survive_the_round_trip_with_spaces_intact():
    subject = "【报送回执】区市场监督管理局 · 违规案例 2026Q2：已接收 120 行，3 行待更正"
    mail = compose.Mail(
        "receipt",
        subject,
        "正文",
        "<p>正文</p>",
        to=[("区人力资源和社会保障局", "rsj@x.cn"), ("区人力资源和社会保障局", "b@x.cn")],
    )
    msg = compose.mime(
        mail,
        from_name="区数据管理局 数据平台",
        from_email="p@x.cn",
        now=datetime(2026, 11, 21, tzinfo=BEIJING),
        run_id=None,
    )
    raw = msg.as_bytes()
    head = raw.split(b"\n\n", 1)[0]
    assert head.isascii()
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert parsed["Subject"] == subject
    assert [a.display_name for a in parsed["To"].addresses] == ["区人力资源和社会保障局"] * 2
    assert parsed["Date"] == "Sat, 21 Nov 2026 00:00:00 +0800"
    assert parsed.get_content_type() == "multipart/alternative"


def test_category_codes_are_shown_in_chinese():
    mail = dept_mail([item(result(category="validity")), item(result("r2", category="新类别"))])
    assert "逐条记录检查，有效性" in mail.text and "逐条记录检查，有效性" in mail.html
    assert "逐条记录检查，新类别" in mail.text  # an unknown category is shown as written


def test_a_failure_against_the_last_mail():
    from market_access.alerts.service import status_of

    told = {"mailed_failed_count": 12, "mailed_share": 0.025, "mailed_severity": "blocking"}
    assert status_of(result(), {}) == "new"  # never mailed in this streak
    assert status_of(result(), told) == "unchanged"  # 12 of 480 = 0.025, as told
    assert status_of(result(failed=13, share=Decimal("0.027")), told) == "worsened"
    # the same count of a smaller set is a larger share: 12 / 400 = 0.03 > 0.025
    assert status_of(result(evaluated=400, share=Decimal("0.03")), told) == "worsened"
    assert status_of(result(failed=5, share=Decimal("0.0104")), told) == "improved"
    assert status_of(result(severity="warning"), told) == "reclassified"
    assert status_of(result(), dict(told, mailed_severity="warning")) == "worsened"  # now blocking


def test_deadline_basis_and_source_as_a_department_reads_them():
    r = result(
        asset="staging.stg_gov_service__cases", source="gov_service", basis_zh="公民身份号码 GB 11643-1999",
        deadline_zh="作出决定之日起 7 个工作日内公示",
    )
    fresh = Item(r, date(2026, 11, 21), 0, False, None, status="new", fix_by=date(2026, 11, 23))
    late = Item(result("r2", asset="quality.department_feeds", source="credit", deadline_zh="每日同步"),
                date(2026, 11, 18), 3, True, None, status="unchanged", fix_by=date(2026, 11, 20))  # fmt: skip
    mail = dept_mail([fresh, late], held=2)
    assert "期限：作出决定之日起 7 个工作日内公示；本问题请于 2026-11-23（含）前整改完毕，逾期仍未通过将抄送区发展和改革局" in mail.text
    assert "期限：每日同步；本问题的整改期限（2026-11-20）已过，已抄送区发展和改革局" in mail.text
    assert "依据：公民身份号码 GB 11643-1999" in mail.text and "整改期限：公民身份号码" not in mail.text
    assert "检查对象：政务服务一体化平台 · 办件（逐条记录检查" in mail.text
    assert "检查对象：信用信息共享平台（" in mail.text  # a feeds rule of a system: the system
    assert "gov_service" not in mail.text + mail.html and "stg_" not in mail.text + mail.html
    assert mail.subject.endswith("2 条规则未通过 (阻断 2) · 另 2 条无变化 · 已抄送区发展和改革局")
    assert "另有 2 条未通过的规则与上次通知相比没有变化或有所减少" in mail.text


def test_submissions_are_named_by_their_template():
    assert compose.source_label("staging.stg_submissions__barrier_complaints", "submissions") == "部门报送 · 隐性壁垒投诉"
    assert compose.source_label("somewhere.unknown", "nothing") == "未登记的数据来源"
