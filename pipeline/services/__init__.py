"""The application services, one module per step; this facade is what interfaces call:
`services.collect(...)`, `services.build(...)`, ... Each returns a typed report (a frozen
dataclass) and prints nothing: pipeline.interfaces.present words the reports.

    collecting  collect  -> CollectReport
    drafting    draft    -> DraftReport
    building    build    -> BuildReport      (merged_issue -> Merged)
    approving   approve  -> ApproveReport    (publish -> PublishReport)
    sending     send     -> SendReport
    daily       daily    -> DailyReport      (send_late; StepEvent as it goes)
    status      status   -> DayStatus
    schedule    the scheduler (APScheduler; imported only by `digest schedule`)

The facade's `daily` and `status` are the functions (they shadow their modules' names as
attributes of this package): import from the module itself, `from pipeline.services.daily
import Steps`, when you want the module's other names.
"""

from pipeline.core.layout import draft_path
from pipeline.services.approving import ApproveReport, PublishReport, approve, current_build, publish
from pipeline.services.building import BuildReport, Merged, build, merged_issue
from pipeline.services.collecting import API_SEARCH_MAX, CollectReport, collect, lookup_paper
from pipeline.services.common import file_sha, open_store, read_draft, today
from pipeline.services.daily import (
    LATE_SEND_DAYS,
    DailyReport,
    StepEvent,
    StepFailed,
    Steps,
    daily,
    default_steps,
    late_approved,
    send_late,
)
from pipeline.services.drafting import NOTE_LOOKBACK_DAYS, DraftReport, draft
from pipeline.services.sending import SendReport, approved_variants, send
from pipeline.services.status import BuiltStatus, DayStatus, DraftStatus, progress, status

__all__ = [
    "API_SEARCH_MAX",
    "LATE_SEND_DAYS",
    "NOTE_LOOKBACK_DAYS",
    "ApproveReport",
    "BuildReport",
    "BuiltStatus",
    "CollectReport",
    "DailyReport",
    "DayStatus",
    "DraftReport",
    "DraftStatus",
    "Merged",
    "PublishReport",
    "SendReport",
    "StepEvent",
    "StepFailed",
    "Steps",
    "approve",
    "approved_variants",
    "build",
    "collect",
    "current_build",
    "daily",
    "default_steps",
    "draft",
    "draft_path",
    "file_sha",
    "late_approved",
    "lookup_paper",
    "merged_issue",
    "open_store",
    "progress",
    "publish",
    "read_draft",
    "send",
    "send_late",
    "status",
    "today",
]
