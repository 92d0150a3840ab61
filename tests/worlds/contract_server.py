"""A small, independent server of the source-system contract (docs: ../shared/contracts/source-systems.md).

Written from the contract alone — none of the simulators' code, names or values — so that a test can
say "any server that follows the contract works": its own eight departments (own 统一社会信用代码,
check characters from python-stdnum), its own labels where the contract has no closed list (评价渠道
`PC端`, `移动端`, `二维码`), resources that may return zero records, a clock that moves one day
(new, corrected and deleted records), a quiet mode (the clock moves, nothing changes) and a faults
switch (429 with Retry-After, 5xx, early token expiry). One HTTP server on 127.0.0.1 serves all four
systems under `/<system>` (the connections' `base_path`).

Sources beyond the contract's faults (issue #12), per resource in `ContractServer.hostile`:
`stuck_cursor` (keyset parameters ignored: the same first page again and again), `ignore_until`
(updated_until ignored: records stamped in the future are served), `invalid_utf8` (the text
`BAD_BYTES_MARK` in a record goes out as GBK bytes, which are not UTF-8; `LONE_SURROGATE_MARK` as
the escape `\\ud800`). Records of several MB,
updated_at going backwards and a source that lost its data are edits of `world.records`.

Extend it by subclassing `ContractWorld` (records) or `ContractServer.fault_for` (hostile sources).
"""

from __future__ import annotations

import json
import random
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

from stdnum.cn import uscc as stdnum_uscc

BEIJING = timezone(timedelta(hours=8))
TS = "%Y-%m-%d %H:%M:%S"
SYSTEMS = ("gov_service", "market_supervision", "credit", "random_inspection")
BAD_BYTES_MARK = "〔坏字节〕"
BAD_BYTES = "不好".encode("gbk")  # b"\xb2\xbb\xba\xc3": a stray continuation byte first, not UTF-8
LONE_SURROGATE_MARK = "〔孤代理〕"  # goes out as the JSON escape \ud800: valid UTF-8, no character


def with_check(body17: str) -> str:
    return body17 + stdnum_uscc.calc_check_digit(body17)


@dataclass(frozen=True)
class Dept:
    code: str
    name: str
    aliases: str
    email: str
    role: str
    sources: str  # the directory's `sources` (what the department answers for)


# 青山区: eight departments of a county that is not the simulators' one
DEPARTMENTS = (
    Dept(
        with_check("11441203MB2C00013"),
        "青山区政务服务数据管理局",
        "青山区数据局",
        "sjj@qingshan.example.cn",
        "bureau",
        "",
    ),
    Dept(
        with_check("11441203MB2C00021"),
        "青山区发展和改革委员会",
        "青山区发改委",
        "fgw@qingshan.example.cn",
        "ndrc",
        "credit;violation_cases;satisfaction_survey",
    ),
    Dept(
        with_check("11441203MB2C0003X"),
        "青山区市场监督管理局",
        "青山区市监局",
        "scj@qingshan.example.cn",
        "industry",
        "gov_service;market_supervision;credit;random_inspection;violation_cases;barrier_complaints;rectification_ledger",
    ),
    Dept(
        with_check("11441203MB2C00048"),
        "青山区行政审批服务局",
        "青山区审批局",
        "spj@qingshan.example.cn",
        "industry",
        "gov_service;rectification_ledger",
    ),
    Dept(
        with_check("11441203MB2C00056"),
        "青山区交通运输局",
        "青山区交通局",
        "jtj@qingshan.example.cn",
        "industry",
        "gov_service;credit;random_inspection;rectification_ledger",
    ),
    Dept(
        with_check("11441203MB2C00064"),
        "青山区文化广电旅游体育局",
        "青山区文旅局",
        "wlj@qingshan.example.cn",
        "industry",
        "gov_service;random_inspection",
    ),
    Dept(
        with_check("11441203MB2C00072"),
        "青山区应急管理局",
        "青山区应急局",
        "yjj@qingshan.example.cn",
        "industry",
        "credit;random_inspection;barrier_complaints",
    ),
    Dept(with_check("11441203MB2C00080"), "青山区教育局", "", "jyj@qingshan.example.cn", "industry", ""),
)


def directory_csv(depts=DEPARTMENTS) -> str:
    lines = ["dept_code,dept_name,aliases,alert_emails,role,sources,freshness_days"]
    lines += [f"{d.code},{d.name},{d.aliases},{d.email},{d.role},{d.sources},2" for d in depts]
    return "\n".join(lines) + "\n"


def answering(system: str) -> list[Dept]:
    return [d for d in DEPARTMENTS if system in d.sources.split(";")]


@dataclass
class ContractWorld:
    """The records of every resource: id → record (with updated_at and is_deleted)."""

    seed: int = 7
    now: datetime = field(default_factory=lambda: datetime.now(BEIJING).replace(microsecond=0))
    empty: frozenset[tuple[str, str]] = frozenset({("credit", "credit-repairs")})  # resources with no records
    per_resource: int = 40
    records: dict[tuple[str, str], dict[str, dict]] = field(default_factory=dict)
    day: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.entities = [
            with_check(f"91441203MA{self.rng.randrange(10**6, 10**7)}{i % 10}") for i in range(30)
        ]
        for system, resource, make in self._makers():
            recs = {}
            if (system, resource) not in self.empty:
                for i in range(1, self.per_resource + 1):
                    rec = make(i)
                    recs[rec["id"]] = rec
            self.records[(system, resource)] = recs

    # -- time ---------------------------------------------------------------------------------
    def _stamp(self, days_ago: float) -> str:
        return (self.now - timedelta(days=days_ago)).strftime(TS)

    def _day(self, days_ago: float) -> str:
        return (self.now - timedelta(days=days_ago)).date().isoformat()

    def advance(self, *, quiet: bool = False) -> dict[str, int]:
        """One day later: a few new, corrected and deleted records per resource (none when quiet).
        Changed records are stamped with the real clock so that they sort after everything synced."""
        self.day += 1
        changes = {"new": 0, "corrected": 0, "deleted": 0}
        if quiet:
            return changes
        stamp = datetime.now(BEIJING).replace(microsecond=0) - timedelta(seconds=30)
        for system, resource, make in self._makers():
            recs = self.records[(system, resource)]
            if (system, resource) in self.empty:
                continue
            live = [r for r in recs.values() if not r["is_deleted"]]
            for _ in range(2):
                rec = make(len(recs) + 1, fresh=True)
                rec["updated_at"] = stamp.strftime(TS)
                recs[rec["id"]] = rec
                changes["new"] += 1
            if live:
                fix = dict(self.rng.choice(live), updated_at=stamp.strftime(TS))
                for k in ("comment", "item_name", "name", "violation_facts", "listed_reason", "content"):
                    if k in fix:
                        fix[k] = f"{fix[k]}（更正）"
                recs[fix["id"]] = fix
                changes["corrected"] += 1
            if len(live) > 3 and resource in ("admin-penalties", "evaluations", "results"):
                gone = dict(live[-1], is_deleted=True, updated_at=stamp.strftime(TS))
                recs[gone["id"]] = gone
                changes["deleted"] += 1
        return changes

    def items(self, system: str, resource: str) -> list[dict]:
        return sorted(self.records[(system, resource)].values(), key=lambda r: (r["updated_at"], r["id"]))

    # -- records ------------------------------------------------------------------------------
    def _makers(self):
        return [
            ("gov_service", "service-items", self.service_item),
            ("gov_service", "cases", self.case),
            ("gov_service", "evaluations", self.evaluation),
            ("market_supervision", "entities", self.entity),
            ("market_supervision", "abnormal-operations", self.abnormal),
            ("credit", "admin-licenses", self.licence),
            ("credit", "admin-penalties", self.penalty),
            ("credit", "credit-repairs", self.repair),
            ("credit", "risk-ratings", self.risk),
            ("random_inspection", "inspection-items", self.inspection_item),
            ("random_inspection", "object-pool", self.pool),
            ("random_inspection", "inspectors", self.inspector),
            ("random_inspection", "plans", self.plan),
            ("random_inspection", "tasks", self.task),
            ("random_inspection", "results", self.result),
        ]

    def _dept(self, system: str) -> str:
        return self.rng.choice(answering(system)).code

    def _base(self, prefix: str, i: int, fresh: bool) -> dict:
        age = 0.02 if fresh else self.rng.uniform(0.05, 1.5)  # delivered within the last day and a half
        return {"id": f"{prefix}{i:05d}", "updated_at": self._stamp(age), "is_deleted": False}

    def service_item(self, i, fresh=False):
        legal = self.rng.choice([5, 10, 20])
        return self._base("QSI", i, fresh) | {
            "item_code": f"QS{i:04d}",
            "item_name": f"青山区第{i}项许可",
            "item_type": "行政许可",
            "dept_code": self._dept("gov_service"),
            "legal_limit_days": legal,
            "promised_limit_days": self.rng.choice([0, legal // 2]),
            "online_depth": self.rng.randint(2, 4),
            "negative_list_item_code": None,
            "is_market_access": True,
        }

    def case(self, i, fresh=False):
        sub = self.now - timedelta(days=self.rng.uniform(1, 120))
        done = sub + timedelta(days=self.rng.uniform(0.5, 9))
        done = done if done < self.now else None
        return self._base("QCS", i, fresh) | {
            "service_item_id": f"QSI{self.rng.randint(1, self.per_resource):05d}",
            "dept_code": self._dept("gov_service"),
            "applicant_type": "法人",
            "applicant_name": f"青山{i}号商贸有限公司",
            "applicant_cert_type": "统一社会信用代码",
            "applicant_cert_no": self.rng.choice(self.entities),
            "contact_name": "林晓",
            "contact_phone": "13912345678",
            "channel": self.rng.choice(["窗口", "网上", "移动端"]),
            "submitted_at": sub.strftime(TS),
            "accepted_at": sub.strftime(TS),
            "finished_at": done.strftime(TS) if done else None,
            "status": "办结" if done else "在办",
            "result": "准予" if done else None,
            "is_instant": False,
            "promised_limit_days": 5,
            "one_time_notice": True,
            "supplement_count": self.rng.choice([0, 0, 1]),
        }

    def evaluation(self, i, fresh=False):
        rated = self.now - timedelta(days=self.rng.uniform(1, 100))
        return self._base("QEV", i, fresh) | {
            "case_id": f"QCS{self.rng.randint(1, self.per_resource):05d}",
            "dept_code": self._dept("gov_service"),
            "channel": ("PC端", "移动端", "二维码")[i % 3],
            "rating": self.rng.choice([2, 4, 5, 5]),
            "comment": "办事顺利",
            "rated_at": rated.strftime(TS),
            "rectified_at": None,
        }

    def entity(self, i, fresh=False):
        return self._base("QEN", i, fresh) | {
            "uscc": self.entities[i % len(self.entities)],
            "name": f"青山{i}号商贸有限公司",
            "entity_type": "企业",
            "legal_rep_name": "陈志远",
            "legal_rep_cert_no": "440524188001010014",
            "phone": "13812345678",
            "address": f"青山区兴业路{i}号",
            "industry_code": "F52",
            "registered_capital": 100,
            "established_on": self._day(self.rng.uniform(30, 900)),
            "status": "存续",
            "status_changed_on": None,
            "reg_authority_code": answering("market_supervision")[0].code,
        }

    def abnormal(self, i, fresh=False):
        return self._base("QAB", i, fresh) | {
            "uscc": self.rng.choice(self.entities),
            "listed_on": self._day(self.rng.uniform(5, 200)),
            "listed_reason": "未按规定报送年度报告",
            "removed_on": None,
            "removed_reason": None,
            "authority_code": answering("market_supervision")[0].code,
        }

    def licence(self, i, fresh=False):
        dept = self._dept("credit")
        decided = self.now - timedelta(days=self.rng.uniform(3, 150))
        return self._base("QLC", i, fresh) | {
            "decision_no": f"青审许〔2026〕{i}号",
            "license_name": "经营许可证",
            "license_no": f"QL{i:05d}",
            "license_category": "普通",
            "content": "准予经营",
            "party_name": f"青山{i}号商贸有限公司",
            "party_category": "法人及非法人组织",
            "uscc": self.rng.choice(self.entities),
            "legal_rep_name": "陈志远",
            "cert_type": None,
            "cert_no": None,
            "decided_on": decided.date().isoformat(),
            "valid_from": decided.date().isoformat(),
            "valid_until": None,
            "authority_name": next(d.name for d in DEPARTMENTS if d.code == dept),
            "authority_uscc": dept,
            "dept_code": dept,
            "service_item_id": None,
            "reported_at": (decided + timedelta(days=self.rng.choice([2, 3, 12]))).strftime(TS),
        }

    def penalty(self, i, fresh=False):
        dept = self._dept("credit")
        decided = self.now - timedelta(days=self.rng.uniform(3, 150))
        return self._base("QPN", i, fresh) | {
            "decision_no": f"青罚〔2026〕{i}号",
            "party_name": f"青山{i}号商贸有限公司",
            "party_category": "法人及非法人组织",
            "uscc": self.rng.choice(self.entities),
            "legal_rep_name": "陈志远",
            "cert_type": None,
            "cert_no": None,
            "violation_type": "未按规定公示信息",
            "violation_facts": "逾期未公示",
            "legal_basis": "《企业信息公示暂行条例》",
            "penalty_types": ["罚款"],
            "fine_amount": 0.5,
            "confiscated_amount": None,
            "decided_on": decided.date().isoformat(),
            "publicity_until": (decided + timedelta(days=1095)).date().isoformat(),
            "authority_name": next(d.name for d in DEPARTMENTS if d.code == dept),
            "authority_uscc": dept,
            "dept_code": dept,
            "reported_at": (decided + timedelta(days=self.rng.choice([1, 4, 15]))).strftime(TS),
            "repair_notice_served": self.rng.random() < 0.8,
        }

    def repair(self, i, fresh=False):
        return self._base("QRP", i, fresh) | {
            "penalty_id": f"QPN{i:05d}",
            "uscc": self.rng.choice(self.entities),
            "applied_on": self._day(10),
            "status": "受理中",
            "finished_on": None,
        }

    def risk(self, i, fresh=False):
        return self._base("QRK", i, fresh) | {
            "uscc": self.entities[i % len(self.entities)],
            "risk_level": self.rng.choice("ABCD"),
            "rated_on": self._day(self.rng.uniform(10, 200)),
        }

    def inspection_item(self, i, fresh=False):
        return self._base("QII", i, fresh) | {
            "item_name": f"青山区抽查事项{i}",
            "dept_code": self._dept("random_inspection"),
            "category": "一般检查事项",
        }

    def pool(self, i, fresh=False):
        return self._base("QOP", i, fresh) | {
            "uscc": self.entities[i % len(self.entities)],
            "dept_code": self._dept("random_inspection"),
            "inspection_item_id": f"QII{self.rng.randint(1, self.per_resource):05d}",
        }

    def inspector(self, i, fresh=False):
        return self._base("QIP", i, fresh) | {
            "name": "黄海",
            "cert_no": "11010519491231002X",
            "badge_no": f"QS{i:06d}",
            "dept_code": self._dept("random_inspection"),
            "phone": "13700001111",
        }

    def plan(self, i, fresh=False):
        return self._base("QPL", i, fresh) | {
            "dept_code": self._dept("random_inspection"),
            "year": self.now.year,
            "name": f"{self.now.year}年度抽查计划{i}",
            "created_on": f"{self.now.year}-01-15",
        }

    def task(self, i, fresh=False):
        start = self.now - timedelta(days=self.rng.uniform(20, 150))
        return self._base("QTK", i, fresh) | {
            "plan_id": f"QPL{self.rng.randint(1, self.per_resource):05d}",
            "lead_dept_code": self._dept("random_inspection"),
            "joint_dept_codes": [self._dept("random_inspection")] if i % 4 == 0 else [],
            "inspection_item_ids": [f"QII{self.rng.randint(1, self.per_resource):05d}"],
            "sample_size": 5,
            "risk_based": i % 2 == 0,
            "starts_on": start.date().isoformat(),
            "ends_on": (start + timedelta(days=15)).date().isoformat(),
            "status": "已完成",
        }

    def result(self, i, fresh=False):
        seen = self.now - timedelta(days=self.rng.uniform(20, 120))
        return self._base("QRS", i, fresh) | {
            "task_id": f"QTK{self.rng.randint(1, self.per_resource):05d}",
            "uscc": self.rng.choice(self.entities),
            "entity_name": f"青山{i}号商贸有限公司",
            "inspector_ids": [f"QIP{self.rng.randint(1, self.per_resource):05d}"],
            "inspected_on": seen.date().isoformat(),
            "outcome": "未发现问题",
            "published_on": (seen + timedelta(days=self.rng.choice([3, 10, 40]))).date().isoformat(),
        }


class ContractServer:
    """The HTTP side: OAuth client_credentials, keyset and page paging, errors and faults."""

    def __init__(
        self,
        world: ContractWorld,
        *,
        client_id: str = "qingshan",
        client_secret: str = "qs-secret",
        faults: bool = False,
    ) -> None:
        self.world, self.client_id, self.client_secret, self.faults = world, client_id, client_secret, faults
        self.tokens: set[str] = set()
        self.lock = threading.Lock()
        self.requests = 0
        self.faults_served: dict[str, int] = {}
        # (system, resource) → stuck_cursor | ignore_until | invalid_utf8
        self.hostile: dict[tuple[str, str], str] = {}
        self.data_requests: dict[tuple[str, str], int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                server._handle(self, "POST")

            def do_GET(self):
                server._handle(self, "GET")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def uri(self, system: str) -> str:
        """The AIRFLOW_CONN_<SYSTEM> value for a system."""
        return (
            f"http://{quote(self.client_id)}:{quote(self.client_secret)}@127.0.0.1:{self.port}"
            f"?base_path=%2F{system}"
        )

    def start(self) -> ContractServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def fault_for(self, n: int) -> str | None:
        """Which fault (if any) the n-th data request gets while faults are on: a steady mix."""
        if not self.faults:
            return None
        return {3: "429", 5: "503", 7: "expired", 11: "500"}.get(n % 13)

    # -- request handling ---------------------------------------------------------------------
    def _send(self, h, status: int, body: dict, headers: dict | None = None, bad_bytes: bool = False) -> None:
        raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
        if bad_bytes:
            raw = raw.replace(BAD_BYTES_MARK.encode("utf-8"), BAD_BYTES)
            raw = raw.replace(LONE_SURROGATE_MARK.encode("utf-8"), b"\\ud800")
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(raw)

    def _handle(self, h, method: str) -> None:
        parts = urlsplit(h.path)
        segs = [s for s in parts.path.split("/") if s]
        if not segs or segs[0] not in SYSTEMS:
            return self._send(h, 404, {"code": 40400, "message": "not found"})
        system, rest = segs[0], segs[1:]
        if method == "POST" and rest == ["oauth", "token"]:
            length = int(h.headers.get("Content-Length") or 0)
            form = {k: v[-1] for k, v in parse_qs(h.rfile.read(length).decode("utf-8")).items()}
            if (
                form.get("grant_type") != "client_credentials"
                or form.get("client_id") != self.client_id
                or form.get("client_secret") != self.client_secret
            ):
                return self._send(h, 401, {"code": 40100, "message": "invalid_client"})
            token = secrets.token_urlsafe(16)
            with self.lock:
                self.tokens.add(token)
            return self._send(h, 200, {"access_token": token, "token_type": "Bearer", "expires_in": 1800})
        if (
            method != "GET"
            or len(rest) != 3
            or rest[:2] != ["api", "v1"]
            or (system, rest[2]) not in self.world.records
        ):
            return self._send(h, 404, {"code": 40400, "message": "not found"})
        token = (h.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        if token not in self.tokens:
            return self._send(h, 401, {"code": 40101 if token else 40100, "message": "token expired"})
        with self.lock:
            self.requests += 1
            fault = self.fault_for(self.requests)
            if fault:
                self.faults_served[fault] = self.faults_served.get(fault, 0) + 1
                if fault == "expired":
                    self.tokens.discard(token)
        if fault == "429":
            return self._send(h, 429, {"code": 42900, "message": "too many requests"}, {"Retry-After": "1"})
        if fault in ("500", "503"):
            return self._send(h, int(fault), {"code": 50000, "message": "upstream error"})
        if fault == "expired":
            return self._send(h, 401, {"code": 40101, "message": "token expired"})
        q = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            size = int(q.get("page_size", 100))
            page = int(q.get("page", 1))
        except ValueError:
            return self._send(h, 200, {"code": 40001, "message": "参数错误"})
        if not 1 <= size <= 500 or page < 1:
            return self._send(h, 200, {"code": 40001, "message": "参数错误"})
        items = self.world.items(system, rest[2])
        since, until, after = q.get("updated_since"), q.get("updated_until"), q.get("after_id")
        mode = self.hostile.get((system, rest[2]))
        with self.lock:
            self.data_requests[(system, rest[2])] = self.data_requests.get((system, rest[2]), 0) + 1
        if mode == "stuck_cursor" and after is not None:
            since, after = None, None  # the keyset parameters are dropped: page 1 again
        if mode == "ignore_until":
            until = None
        if until:
            items = [i for i in items if i["updated_at"] < until]
        if since and after is not None:
            items = [i for i in items if (i["updated_at"], i["id"]) > (since, after)]
            total, window = len(items), items[:size]
        else:
            if since:
                items = [i for i in items if i["updated_at"] >= since]
            total, window = len(items), items[(page - 1) * size : page * size]
        return self._send(
            h,
            200,
            {
                "code": 0,
                "message": "成功",
                "data": {"total": total, "page": page, "page_size": size, "items": window},
            },
            bad_bytes=mode == "invalid_utf8",
        )


def serve(**kw) -> ContractServer:
    return ContractServer(ContractWorld(**kw)).start()


if __name__ == "__main__":  # by hand: python tests/worlds/contract_server.py
    import time

    srv = serve()
    for s in SYSTEMS:
        print(f"AIRFLOW_CONN_{s.upper()}='{srv.uri(s)}'")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()
