"""Celery app for the baseline, configured as Merlin configures Celery: acks late,
prefetch multiplier 1, pickle, a durable queue, results through the same RabbitMQ (rpc://).
Settings from the environment: BENCH_CELERY_BROKER (pyamqp://...), BENCH_CELERY_QUEUE,
BENCH_NOOP_SIM (path of specline-sim-noop for the `spawn` task)."""
import os
import subprocess

from celery import Celery
from kombu import Queue

QUEUE = os.environ.get("BENCH_CELERY_QUEUE", "bench-celery")
app = Celery("bench", broker=os.environ.get("BENCH_CELERY_BROKER", "pyamqp://guest:guest@127.0.0.1//"),
             backend="rpc://")
app.conf.update(
    task_acks_late=True,               # Merlin
    worker_prefetch_multiplier=1,      # Merlin
    task_serializer="pickle",          # Merlin
    result_serializer="pickle",
    accept_content=["pickle"],
    task_queues=[Queue(QUEUE, durable=True)],
    task_default_queue=QUEUE,
    result_persistent=False,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)

NOOP_SIM = os.environ.get("BENCH_NOOP_SIM", "specline-sim-noop")
INPUT = b'{"inputs": {"x": 1.0}, "max_steps": 1, "sample_id": "s"}\n'


@app.task(name="bench.noop")
def noop():
    return None


@app.task(name="bench.spawn")
def spawn():
    """the same no-op simulator process a specline task runs, output read back"""
    r = subprocess.run([NOOP_SIM], input=INPUT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    return r.stdout
