"""Scheduled tasks (/jobs, /manager/tasks, /system/tasks) on DBOS Transact.

domain.py     assembly: actions, engine, planner, heartbeat, servicers
models.py     tasks (definitions), task_state (this instance's counters), task_running, task_executors
triggers.py   interval / cron with time zone / once: parsing and tick arithmetic
engine.py     DBOS, one per process, on its own loop; a run is a workflow whose id names its tick
runs.py       run requests, run ids, and runs as DBOS keeps them (the history)
planner.py    each replica starts every due tick; the misfire policy (run once)
runner.py     what a run does around its action: begin (permissions now), steps, finish, events
executors.py  replicas' heartbeats; the runs of a dead one resume elsewhere
actions/      the actions (rag.reindex, backup.export, llm.prompt, tool.call, plugins', housekeeping)
service.py    create, read, change, run, pause, cancel, delete; servicer.py over gRPC
views.py      a task as the routes show it; health.py the scheduler for /manager/health
"""
