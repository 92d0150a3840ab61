"""Run the cleared tasks of an existing DAG run to the end, in process, as a scheduler would.

    python tests/dags/rerun_cleared.py <dag_id> <run_id> [<task_id to clear, with its downstream> …]

`airflow dags test` always clears the whole DAG for its logical date (a new attempt of every task),
so it cannot rerun only what an operator cleared. This is the scheduling loop of Airflow's own
`DAG.test()` (airflow/sdk/definitions/dag.py, same calls) applied to the run as it stands: tasks
still in a final state keep it, cleared ones run when their upstream allows. Exits 0 when the run
ends in success. With task ids it first clears those tasks and everything downstream of them in the
run, with Airflow's own `clear_task_instances` (what the UI's and the REST API's clear call).
"""

from __future__ import annotations

import sys
import time


def main(dag_id: str, run_id: str, *clear: str) -> int:
    from airflow import settings
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance, clear_task_instances
    from airflow.sdk.definitions.dag import _run_task
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils import timezone
    from airflow.utils.state import DagRunState, TaskInstanceState

    dag = DagBag(dag_folder=settings.DAGS_FOLDER).get_dag(dag_id)
    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    session = settings.Session()
    if clear:
        ids = {
            t
            for task_id in clear
            for t in (task_id, *dag.get_task(task_id).get_flat_relative_ids(upstream=False))
        }
        tis = session.query(TaskInstance).filter(
            TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id.in_(ids)
        )
        clear_task_instances(tis.all(), session)
        session.commit()
        print(f"cleared {sorted(ids)}")
    dr = session.query(DagRun).filter_by(dag_id=dag_id, run_id=run_id).one()
    dr.dag = scheduler_dag
    dr.state = DagRunState.RUNNING
    session.commit()
    while dr.state == DagRunState.RUNNING:
        session.expire_all()
        schedulable, _ = dr.update_state(session=session)
        for ti in schedulable:
            if ti.state != TaskInstanceState.UP_FOR_RESCHEDULE:
                ti.try_number += 1
            ti.state = TaskInstanceState.SCHEDULED
            ti.scheduled_dttm = timezone.utcnow()
        session.commit()
        scheduled = [
            t for t in dr.get_task_instances(session=session) if t.state == TaskInstanceState.SCHEDULED
        ]
        if not scheduled:
            time.sleep(1)  # e.g. a retry waiting for its delay
        for ti in scheduled:
            _run_task(ti=ti, task=dag.task_dict[ti.task_id], run_triggerer=True)
    print(f"{dag_id} {run_id}: {dr.state}")
    return 0 if dr.state == DagRunState.SUCCESS else 1


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
