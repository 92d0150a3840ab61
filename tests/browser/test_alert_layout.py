"""The alert mails in a real browser: headless Debian `chromium` at a mail window's width.

The HTML part of the real composed message (compose.department_mail → compose.mime → parsed back)
is opened at 800 px and 600 px; a script run by the browser measures the laid-out page and writes
the numbers into the DOM, which `chromium --dump-dom` returns. The 800 px screenshot is kept under
.local/test-artifacts/ (TEST_ARTIFACTS_DIR) for a person to look at.

Needs `chromium` (apt; `make browser-deps`). The department mail is built from real rules of the
shipped catalogue, so descriptions, fixes and standards have their real lengths.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import date, datetime
from decimal import Decimal
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from market_access.alerts import compose
from market_access.alerts.compose import DeptRow, Item, QualityRun, RuleResult
from market_access.quality import catalogue
from market_access.settings import BEIJING

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR", REPO / ".local" / "test-artifacts"))
DAY = date(2026, 11, 23)
RUN = QualityRun("q20261123-030000-ab12", datetime(2026, 11, 23, 3, tzinfo=BEIJING), None, DAY, "succeeded",
                 "/srv/market-access/quality/data_docs")  # fmt: skip
NARROWEST_TEXT_PX = (
    60  # no block holding text narrower than this (整改方法 once wrapped one character a line)
)

# Runs in the page after layout: every measurement the assertions need, as JSON in <body data-metrics>.
MEASURE = """
<script>
window.addEventListener('load', () => {
  const vw = window.innerWidth;
  const blocks = [...document.querySelectorAll('p, div, td, th, h1, li')].filter(
    el => [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()));
  const widths = blocks.map(el => ({w: el.getBoundingClientRect().width,
                                    text: el.textContent.trim().slice(0, 20)}));
  widths.sort((a, b) => a.w - b.w);
  const overflow = [...document.body.querySelectorAll('*')].filter(
    el => el.getBoundingClientRect().right > vw + 0.5).map(el => el.tagName + ':' + el.textContent.trim().slice(0, 20));
  const values = [...document.querySelectorAll('td + td')].map(el => el.getBoundingClientRect().width);
  document.body.setAttribute('data-metrics', JSON.stringify({
    viewport: vw, scrollWidth: document.documentElement.scrollWidth,
    narrowest: widths.slice(0, 3), overflow: overflow.slice(0, 5),
    minValueWidth: values.length ? Math.min(...values) : null,
    blocks: document.querySelectorAll('div[data-rule]').length,
  }));
});
</script>
"""


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.fail(
            "chromium is not installed: run `make browser-deps` (apt-get install chromium fonts-noto-cjk)"
        )
    return exe


def browser(html_file: Path, width: int, *args: str) -> str:
    out = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--window-size={width},2400", *args, html_file.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def measure(html: str, name: str, width: int) -> dict:
    page = ARTIFACTS / f"{name}-{width}-measure.html"
    page.write_text(html.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    dom = browser(page, width, "--dump-dom")
    m = re.search(r'data-metrics="([^"]*)"', dom)
    assert m, dom[-2000:]
    import html as html_mod

    return json.loads(html_mod.unescape(m.group(1)))


def screenshot(html: str, name: str, width: int) -> Path:
    page = ARTIFACTS / f"{name}.html"
    page.write_text(html, encoding="utf-8")
    png = ARTIFACTS / f"{name}-{width}.png"
    png.unlink(missing_ok=True)
    browser(page, width, f"--screenshot={png}")
    assert png.stat().st_size > 10_000  # a page with text, not a blank one
    print(f"screenshot: {png}")
    return png


def html_part(mail: compose.Mail) -> str:
    """The HTML as a mail reader gets it: composed into MIME, serialised, parsed back."""
    raw = compose.mime(mail, from_name="区数据管理局 数据平台", from_email="dq@demo-county.gov.cn",
                       now=datetime(2026, 11, 23, 9, tzinfo=BEIJING), run_id=RUN.run_id).as_bytes()  # fmt: skip
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    return msg.get_body(preferencelist=("html",)).get_content()


def real_result(rule: catalogue.Rule, failed: int, evaluated: int, samples=()) -> RuleResult:
    return RuleResult(
        rule_id=rule.id, dept_code="113604210795604218", asset=rule.asset, source=rule.source,
        level=rule.level, category=rule.category, severity=rule.severity, success=False,
        evaluated_count=evaluated, failed_count=failed, failed_share=Decimal(failed) / evaluated,
        sample_record_ids=tuple(samples), observed_on=DAY,
        observed="2026-11-22 申请办件 3 件; 此前 20 个工作日日均 41 件, 正常区间 22–60 件"
        if rule.level == "dataset" else None,
        description_zh=rule.description_zh, fix_zh=rule.fix_zh, deadline_zh=rule.deadline_zh,
        basis_zh=rule.basis_zh, data_docs_page=f"validations/{rule.id}.html",
    )  # fmt: skip


@pytest.fixture(scope="module")
def department_html() -> str:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    rules = catalogue.load().by_id
    # a mix a department really gets: ID-number validity (a standard as 依据), a publicity time limit,
    # a feed that is late (每日同步), a blocking completeness rule with long sample ids
    picks = [
        ("GS-CASE-001", 12, 4800),
        ("CR-PEN-009", 3, 200),
        ("GS-CASE-013", 1, 1),
        ("CR-LIC-008", 40, 950),
    ]
    picks += [(r.id, 5, 480) for r in rules.values() if r.basis_zh and "GB 11643" in r.basis_zh][:1]
    samples = [f"GS-CASE-2026-{i:06d}" for i in range(1, 11)]
    items = [
        Item(real_result(rules[rid], f, e, samples if rules[rid].level == "row" else ()),
             date(2026, 11, 21 - n), 2 + n, n >= 1, compose.docs_link(f"validations/{rid}.html", RUN.data_docs_dir),
             status=("new", "worsened", "unchanged", "improved", "new")[n], fix_by=date(2026, 11, 23 - n))
        for n, (rid, f, e) in enumerate(picks)
    ]  # fmt: skip
    mail = compose.department_mail(
        run=RUN, day=DAY, dept_code="113604210795604218", dept_name="区市场监督管理局",
        to=["scjgj@demo-county.gov.cn"], items=items, evaluated=37, ndrc_name="区发展和改革局",
        ndrc_addrs=["fgj@demo-county.gov.cn"], escalate_after=3, sender="区数据管理局 市场准入效能评估数据平台",
        digest=True, digest_weekday=1,
    )  # fmt: skip
    return html_part(mail)


@pytest.mark.parametrize("width", [800, 600])
def test_department_mail_fits_a_mail_window(department_html, width):
    m = measure(department_html, "department", width)
    assert m["viewport"] == width
    assert m["scrollWidth"] <= width, m  # no horizontal scrolling
    assert m["overflow"] == [], m  # nothing sticks out on the right (the old 问题状态 column did)
    assert m["narrowest"][0]["w"] >= NARROWEST_TEXT_PX, m
    # the values of each block (期限, 依据, 整改方法 …) get most of the width: ≥ 60 % of the window
    # at 600 px (600 − 2×16 padding − 2×13 block padding − 5.5em label ≈ 460 px), the 720 px column
    # less the same at 800 px
    assert m["minValueWidth"] >= 0.6 * min(width, 720), m
    assert m["blocks"] == 5  # one block per rule


def test_department_mail_screenshot_at_800px(department_html):
    png = screenshot(department_html, "department", 800)
    # the sources and the standard as a person reads them, never a relation name
    assert "政务服务一体化平台 · 办件" in department_html and "stg_" not in department_html
    assert "公民身份号码 GB 11643-1999" in department_html and "依据" in department_html
    assert png.exists()


def test_bureau_summary_fits_800px(department_html):
    worst = real_result(catalogue.load().by_id["GS-CASE-001"], 12, 4800)
    rows = [
        DeptRow(f"D{n:02d}", name, 37, 27 - n % 23, n % 6, worst, ("sent", "digest", "unchanged", "escalated")[n % 4])
        for n, name in enumerate(["区市场监督管理局", "区发展和改革局", "区住房和城乡建设局", "区卫生健康局",
                                  "区行政审批局", "区自然资源和规划局", "区生态环境分局", "区交通运输局"] * 4)
    ]  # fmt: skip
    mail = compose.bureau_mail(run=RUN, day=DAY, bureau_name="区数据管理局", to=["sjglj@demo-county.gov.cn"],
                               rows=rows, ndrc_name="区发展和改革局", sender="区数据管理局 数据平台")  # fmt: skip
    html = html_part(mail)
    m = measure(html, "bureau", 800)
    assert m["scrollWidth"] <= 800 and m["overflow"] == [], m
    assert m["narrowest"][0]["w"] >= 40, m  # the number columns are narrow by nature, never a sliver
    screenshot(html, "bureau", 800)


def test_bureau_summary_with_mails_awaiting_a_decision_fits_800px(department_html):
    """Issue 12: the departments whose mail is uncertain or rejected, and the list awaiting a decision
    (long Message-IDs and server replies wrap instead of widening the column)."""
    worst = real_result(catalogue.load().by_id["GS-CASE-001"], 12, 4800)
    rows = [
        DeptRow(f"D{n:02d}", name, 37, 5, 1, worst, status)
        for n, (name, status) in enumerate(
            [("区市场监督管理局", "uncertain"), ("区卫生健康局", "rejected"), ("区住房和城乡建设局", "sent")]
        )
    ]
    awaiting = [
        {"message_id": "<179612853642.24908.9217037783560630899.dept@demo-county.gov.cn>", "kind": "dept",
         "dept_name": "区市场监督管理局", "subject": "【数据质量告警】区市场监督管理局 2026-11-21: 3 条规则未通过 (阻断 1)",
         "sent_at": "2026-11-21 09:00", "status": "uncertain",
         "smtp_reply": "no reply after the end of the message: SMTPServerDisconnected: Connection unexpectedly closed"},
        {"message_id": "<179612853642.24908.9217037783560630900.dept@demo-county.gov.cn>", "kind": "dept",
         "dept_name": "区卫生健康局", "subject": "【数据质量告警】区卫生健康局 2026-11-21: 1 条规则未通过",
         "sent_at": "2026-11-21 09:00", "status": "rejected",
         "smtp_reply": "554 5.7.1 Message content rejected by policy"},
    ]  # fmt: skip
    mail = compose.bureau_mail(run=RUN, day=DAY, bureau_name="区数据管理局", to=["sjglj@demo-county.gov.cn"],
                               rows=rows, ndrc_name="区发展和改革局", sender="区数据管理局 数据平台",
                               undelivered=awaiting)  # fmt: skip
    html = html_part(mail)
    assert "待人工确认的邮件（2 封）" in html and "结果不确定（服务器未答复）" in html and "被拒收" in html
    m = measure(html, "bureau_undelivered", 800)
    assert m["scrollWidth"] <= 800 and m["overflow"] == [], m
    assert screenshot(html, "bureau_undelivered", 800).exists()
