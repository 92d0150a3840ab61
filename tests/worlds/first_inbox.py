"""The inbox of a bureau's first weeks: files from one department only — 违规案例 and 满意度调查
(accepted) and a 整改台账 without its 责任单位 header (rejected); nobody sends 隐性壁垒投诉."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from contract_server import DEPARTMENTS, Dept, with_check

_BUREAU, _NDRC, SCJ, SPJ, *_ = DEPARTMENTS


SUB_HEADERS = {
    "违规案例": "案例编号,报送单位,案例类型,发现日期,涉及事项,负面清单事项编码,处置状态,处置完成日期,案情摘要",
    "满意度调查": "问卷编号,填报日期,统一社会信用代码,评价对象单位,评价维度,得分",
    # 整改台账 without 责任单位: rejected as a whole
    "整改台账": "问题编号,问题描述,问题来源,牵头领导,明显成效时限,整改到位时限,整改状态,销号日期",
}


def write_inbox(inbox: Path, sender: Dept, on: date) -> None:
    """The files, dated `on` (never in the future: a survey answered tomorrow fails its rule)."""
    year, month = on.year, on.month
    folder = inbox / sender.code
    folder.mkdir(parents=True)
    day = on.isoformat()
    (folder / f"违规案例_{year}-{month:02d}.csv").write_text(
        SUB_HEADERS["违规案例"] + "\n"
        f"QS-VC-1,{sender.name},清单外增设准入条件,{day},道路运输经营许可,123456,已处置,{day},要求额外证明\n"
        f"QS-VC-2,{SCJ.name},设置隐性壁垒,{day},食品经营许可,234567,处置中,,限定本地企业\n",
        encoding="utf-8",
    )
    quarter = (month - 1) // 3 + 1
    (folder / f"满意度调查_{year}Q{quarter}.csv").write_text(
        SUB_HEADERS["满意度调查"] + "\n"
        f"QS-S-1,{day},{with_check('91441203MA5T00011')},{SPJ.name},审批效率,4\n"
        f"QS-S-2,{day},00000000000000000X,{SPJ.name},总体,5\n",
        encoding="utf-8",
    )
    (folder / f"整改台账_{year}H{1 if month <= 6 else 2}.csv").write_text(
        SUB_HEADERS["整改台账"] + "\nQS-R-1,审批材料过多,效能评估,王强,2026-09-30,2026-12-31,整改中,\n",
        encoding="utf-8",
    )
