"""Schedules and triggers at run time: what each job's `schedule`, `trigger` and `continuous` settings
have done so far, when each must be looked at next, and what `tick`, job saves, run ends and blob events
do with them. The decisions are the pure functions of `core.schedule`; `service.py` applies them and
starts the runs they ask for, `store.py` keeps their state (one partition of the `triggers` table, whose
rows it documents), and `describe.py` shows it in jobs/get.

**Cost grows with what is due.** `tick` reads the index range `d` .. `d<now>`: one range query holding
just the due entries, whatever the number of jobs. The entry of a source moves (delete + insert in the
same batch as the state) when the job is saved and after each check.

**Exactly once.** Every run a trigger starts is a run-now with an idempotency token derived from the
state it was decided on (job + scheduled instant for schedules, job + fire count + last change for
events), so two hosts ticking at once, a replayed tick or a crash between starting the run and saving
the state start one run. The state write is conditional on the ETag that was read; the loser of a race
re-reads and finds the work done.

**Downtime.** A schedule whose fire time passed while no Floe ticked fires once, for the earliest
missed instant, as soon as Floe ticks again; the next fire is the first one after that tick. Missed
instants in between are skipped, never replayed one by one. Periodic triggers do the same (see
`core.schedule.periodic`).

A job save first marks the job (`p<job id>`: "plan pending"); planning removes the mark. A crash between
the save and its plan leaves the mark, and `sweep()` (every reconcile) re-plans the marked jobs: one range
query when nothing crashed. A plan that a race left stale is healed too: a due check compares the state's
settings hash with the job's current settings and re-plans instead of firing.
"""

from core.triggers.service import Fire, TriggerService, next_cron_fire
from core.triggers.store import TriggerRecord, TriggerStore

__all__ = ["Fire", "TriggerRecord", "TriggerService", "TriggerStore", "next_cron_fire"]
