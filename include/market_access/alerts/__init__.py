"""Data-quality alert e-mails and submission receipts: one zh-CN mail per failing department,
escalation to the 发改局, a summary for the 数据管理局; via `smtp_default` or an .eml outbox."""

from market_access.alerts.service import AlertSummary, SentMessage, send_alerts, send_receipts
from market_access.alerts.state import AlertError
from market_access.alerts.transport import MailError

__all__ = ["AlertError", "AlertSummary", "MailError", "SentMessage", "send_alerts", "send_receipts"]
