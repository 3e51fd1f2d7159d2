"""Journey 8 (HPC): the reference example with its training tasks as jobs of a real,
single-node Slurm (munged, slurmctld and slurmd started here as root), and the sbatch
script of ``wxops deploy slurm``."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from tests.loopback import free_port, stop

WXOPS = str(Path(sys.executable).with_name("wxops"))
DAEMONS = {"munged": "/usr/sbin/munged", "slurmctld": "/usr/sbin/slurmctld", "slurmd": "/usr/sbin/slurmd"}


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "the single-node Slurm runs its daemons as root; run the tests as root (CI does)"
    missing = [n for n, p in DAEMONS.items() if not Path(p).exists()] + [
        n for n in ("sbatch", "sinfo") if shutil.which(n) is None]
    if missing:
        return f"Slurm is not installed ({', '.join(missing)}): apt-get install slurm-wlm munge (.ci/run does)"
    if not Path("/etc/munge/munge.key").exists():
        return "no munge key (/etc/munge/munge.key): reinstall munge"
    return None


def _slurm_conf(root: Path, host: str) -> str:
    memory = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20 * 0.8)
    return "\n".join([
        "ClusterName=wxops-test", f"SlurmctldHost={host}(127.0.0.1)",
        f"SlurmctldPort={free_port()}", f"SlurmdPort={free_port()}",
        "AuthType=auth/munge", f"AuthInfo=socket={root}/munge/socket", "CredType=cred/munge",
        "SlurmUser=root", "SlurmdUser=root",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "JobCompType=jobcomp/filetxt", f"JobCompLoc={root}/jobcomp.log",
        "SchedulerType=sched/backfill", "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
        f"StateSaveLocation={root}/state", f"SlurmdSpoolDir={root}/spool",
        f"SlurmctldPidFile={root}/slurmctld.pid", f"SlurmdPidFile={root}/slurmd.pid",
        f"SlurmctldLogFile={root}/slurmctld.log", f"SlurmdLogFile={root}/slurmd.log",
        "ReturnToService=2", "MpiDefault=none", "GresTypes=gpu",
        # A GPU whose device file is /dev/null: sbatch --gres=gpu:1 schedules as on a GPU node.
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count() or 1} RealMemory={memory} Gres=gpu:1 "
        "State=UNKNOWN",
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""])


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A running single-node Slurm; yields its job completion log (SLURM_CONF is set)."""
    why = _why_not()
    if why:
        pytest.skip(why)
    root = tmp_path_factory.mktemp("slurm")
    for sub in ("munge", "state", "spool"):
        (root / sub).mkdir(mode=0o700)
    root.chmod(0o755)
    (root / "munge").chmod(0o755)
    key = root / "munge" / "munge.key"
    shutil.copy("/etc/munge/munge.key", key)
    key.chmod(0o600)
    host = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text(_slurm_conf(root, host))
    (root / "gres.conf").write_text(f"NodeName={host} Name=gpu File=/dev/null\n")
    procs: list[subprocess.Popen[bytes]] = []
    saved = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    commands = [
        [DAEMONS["munged"], "-F", "--force", "--num-threads=4", f"--socket={root}/munge/socket",
         f"--key-file={key}", f"--log-file={root}/munge/munged.log", f"--pid-file={root}/munge/munged.pid",
         f"--seed-file={root}/munge/munged.seed"],
        [DAEMONS["slurmctld"], "-D", "-f", str(conf)],
        [DAEMONS["slurmd"], "-D", "-f", str(conf), "-N", host],
    ]
    try:
        for command in commands:
            with (root / f"{Path(command[0]).name}.out").open("wb") as sink:
                procs.append(subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT,
                                              start_new_session=True))
            time.sleep(0.5)
        deadline = time.monotonic() + 60
        state = ""
        while time.monotonic() < deadline:
            dead = [p.args[0] for p in procs if p.poll() is not None]  # type: ignore[index]
            if dead:
                logs = "".join((root / f"{Path(str(d)).name}.out").read_text(errors="replace")[-500:]
                               for d in dead)
                pytest.skip(f"Slurm daemons exited on start ({dead}): {logs}")
            state = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True).stdout.strip()
            if state == "idle":
                break
            time.sleep(0.5)
        else:
            pytest.skip(f"the Slurm node did not become idle within 60 s (state {state!r}); see {root}")
        yield root / "jobcomp.log"
    finally:
        subprocess.run(["scancel", "--user=root"], capture_output=True, check=False)
        for proc in reversed(procs):
            stop(proc)
        if saved is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = saved


@pytest.mark.slow
def test_journey_8_training_tasks_run_as_slurm_jobs(slurm: Path, tmp_path: Path) -> None:
    """Journey 8: ``execution: executor: slurm`` → every training task ran inside a Slurm
    job, and those jobs are in the job completion log."""
    project = tmp_path / "project"
    project.mkdir()
    raw = {"seed": 7,
           "models": [{"name": "mlp", "type": "mlp", "hidden_dim": 8, "epochs": 2, "batch_size": 256},
                      {"name": "gbm", "type": "gradient_boosting", "max_iter": 10},
                      {"name": "ridge", "type": "linear"}],
           "execution": {"executor": "slurm",
                         "slurm": {"jobs": 2, "cores": 1, "memory": "2GB", "walltime": "00:20:00",
                                   "queue": "debug", "setup": ["echo wxops worker on $(hostname)"],
                                   "start_timeout_s": 180}}}
    (project / "wxops.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    done = subprocess.run([WXOPS, "run", "-c", "wxops.yaml", "--quiet"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    uri = f"sqlite:///{project / 'mlflow.db'}"
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("visibility").experiment_id],
                              "tags.`wxops.kind` = 'config'")
    jobs = {r.info.run_name: r.data.tags.get("wxops.slurm_job_id") for r in runs}
    assert set(jobs) == {"mlp", "gbm", "ridge"} and all(jobs.values()), jobs
    # The workers' jobs end when the run closes its cluster; slurmctld then writes them.
    deadline = time.monotonic() + 60
    logged: dict[str, str] = {}
    while time.monotonic() < deadline:
        text = slurm.read_text() if slurm.exists() else ""
        logged = dict(re.findall(r"JobId=(\d+) .*?Name=(\S+)", text))
        if set(jobs.values()) <= set(logged):
            break
        time.sleep(1)
    assert set(jobs.values()) <= set(logged), (jobs, logged)
    assert {logged[j] for j in jobs.values()} == {"wxops-worker"}
    outputs = list((project / ".wxops" / "slurm").glob("*.out")) + list((project / ".wxops" / "slurm").glob("*.err"))
    assert any("wxops worker on" in p.read_text(errors="replace") for p in outputs)


def test_slurm_executor_config_errors() -> None:
    from wxops.config import parse_config
    from wxops.errors import ConfigError

    with pytest.raises(ConfigError, match="walltime"):
        parse_config({"execution": {"executor": "slurm", "slurm": {"walltime": "two hours"}}})
    with pytest.raises(ConfigError, match="memory"):
        parse_config({"execution": {"executor": "slurm", "slurm": {"memory": "4 lots"}}})
    with pytest.raises(ConfigError, match="use local, dask, slurm"):
        parse_config({"execution": {"executor": "pbs"}})


def test_slurm_refusals_are_clear_errors(slurm: Path, tmp_path: Path) -> None:
    from wxops.config import parse_config
    from wxops.errors import ExecutorError
    from wxops.execution import open_executor

    def slurm_cfg(**options: object):  # type: ignore[no-untyped-def]
        return parse_config({"execution": {"executor": "slurm", "slurm": {
            "log_directory": str(tmp_path / "logs"), **options}}}).execution

    with pytest.raises(ExecutorError, match=r"Slurm refuses the worker job .*invalid partition"), \
            open_executor(slurm_cfg(queue="no-such-partition")):
        pass
    # A job that starts but whose worker never comes (a broken interpreter on the nodes).
    with pytest.raises(ExecutorError, match="no Slurm job started a worker within 8 s"), \
            open_executor(slurm_cfg(python="/nonexistent/python", start_timeout_s=8, jobs=1)):
        pass
    subprocess.run(["scancel", "--user=root"], capture_output=True, check=False)


@pytest.mark.slow
def test_journey_8_deploy_slurm_trains_on_a_gpu_node_into_the_outbox(slurm: Path, tmp_path: Path) -> None:
    """Journey 8: ``wxops deploy slurm`` writes an sbatch script for a GPU node; submitted,
    it trains and logs for the team server, into the offline outbox when the node cannot
    reach it (here: nothing listens at the server's address)."""
    from wxops.outbox import TARGET_TAG, default_outbox, outbox_uri

    project = tmp_path / "project"
    project.mkdir()
    (project / "wxops.yaml").write_text(yaml.safe_dump(
        {"seed": 7, "models": [{"name": "ridge", "type": "linear"}]}))
    # MLflow retries an unreachable server with backoff for minutes by default; the node
    # here has no server at all, so it may give up at once and go to the outbox.
    env = {**os.environ, "HOME": str(tmp_path / "home"), "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
           "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
    server = f"http://127.0.0.1:{free_port()}"
    bad = subprocess.run([WXOPS, "deploy", "slurm", "--tracking-uri", server, "--time", "4 hours"],
                         cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "--time '4 hours': write it as [D-]HH:MM[:SS]" in bad.stderr
    wrote = subprocess.run([WXOPS, "deploy", "slurm", "--tracking-uri", server, "--partition", "debug",
                            "--cpus", "1", "--mem", "1G", "--time", "00:20:00",
                            "--setup", "export WXOPS_TEST_SETUP=loaded"],
                           cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert wrote.returncode == 0, wrote.stderr
    script = project / "deploy" / "slurm" / "train.sbatch"
    assert "#SBATCH --gres=gpu:1" in script.read_text()
    job = subprocess.run(["sbatch", "--parsable", "--wait", str(script.relative_to(project))], cwd=project,
                         env=env, capture_output=True, text=True, timeout=900)
    job_id = job.stdout.strip().split(";")[0]
    log = (project / ".wxops" / "slurm" / f"wxops-train-{job_id}.out").read_text(errors="replace")
    assert job.returncode == 0, job.stderr + log[-3000:]
    assert "runs kept in .wxops/outbox" in log
    text = slurm.read_text()
    assert re.search(rf"JobId={job_id} .*Name=wxops-train JobState=COMPLETED", text), text[-2000:]
    outbox = MlflowClient(outbox_uri(default_outbox(project)))
    runs = outbox.search_runs([outbox.get_experiment_by_name("visibility").experiment_id])
    assert {r.info.run_name for r in runs} >= {"pipeline", "ridge"}
    assert {r.data.tags.get(TARGET_TAG) for r in runs if r.info.run_name == "pipeline"} == {server}
