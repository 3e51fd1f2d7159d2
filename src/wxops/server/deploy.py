"""``wxops deploy server``: the team server of ``wxops server start`` as a systemd unit and a compose service.

Both run ``mlflow server`` in the foreground with the same flags wxops uses, and both
keep secrets out of the files written here: the admin bootstrap password, the CSRF
key and the database password live in an environment file the operator fills in
(``server.env``, mode 0600), of which only a placeholder copy is written.
"""

from __future__ import annotations

import os
from importlib.metadata import version
from pathlib import Path

from wxops.errors import DeployError
from wxops.server.process import PERMISSIONS

_FLAGS = ("--serve-artifacts --artifacts-destination {artifacts} --app-name basic-auth "
          "--host 0.0.0.0 --port {port} --workers 2")

_UNIT = """[Unit]
Description=wxops team tracking server (MLflow on PostgreSQL, basic auth)
After=network-online.target postgresql.service
Wants=network-online.target

[Service]
Type=simple
User=wxops
Group=wxops
# MLFLOW_BACKEND_STORE_URI, MLFLOW_AUTH_ADMIN_PASSWORD and MLFLOW_FLASK_SERVER_SECRET_KEY
EnvironmentFile=/etc/wxops/server.env
Environment=MLFLOW_AUTH_CONFIG_PATH=/etc/wxops/basic_auth.ini
ExecStart={python} -m mlflow server {flags}
Restart=on-failure
RestartSec=5
KillMode=control-group
NoNewPrivileges=yes
PrivateTmp=yes
ProtectSystem=strict
ProtectHome=yes
ReadWritePaths={artifacts} /var/lib/wxops

[Install]
WantedBy=multi-user.target
"""

_COMPOSE = """# wxops team tracking server: `docker compose -f compose.server.yaml up -d`
# Fill in server.env first (copy server.env.example; keep it mode 0600, out of git).
services:
  db:
    image: postgres:16
    environment:
      POSTGRES_USER: mlflow
      POSTGRES_DB: mlflow
    env_file: server.env
    volumes:
      - pgdata:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U mlflow -d mlflow"]
      interval: 5s
      retries: 20
  mlflow:
    build:
      context: .
      dockerfile_inline: |
        FROM python:3.11-slim
        RUN pip install --no-cache-dir "mlflow=={mlflow}" "psycopg[binary]>=3.1" "Flask-WTF>=1.2"
    command: >-
      mlflow server {flags}
    env_file: server.env
    environment:
      MLFLOW_AUTH_CONFIG_PATH: /etc/wxops/basic_auth.ini
    volumes:
      - ./basic_auth.ini:/etc/wxops/basic_auth.ini:ro
      - artifacts:{artifacts}
      - authdb:/var/lib/wxops
    ports:
      - "{port}:{port}"
    depends_on:
      db:
        condition: service_healthy
    healthcheck:
      test: ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/health')"]
      interval: 10s
      retries: 12
    restart: unless-stopped
volumes:
  pgdata:
  artifacts:
  authdb:
"""

_INI = """[mlflow]
default_permission = {permission}
database_uri = sqlite:////var/lib/wxops/auth.db
admin_username = admin
# admin_password comes from MLFLOW_AUTH_ADMIN_PASSWORD in server.env (never in this file)
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
# a checked password is trusted this long per worker (one slow hash per request otherwise)
auth_cache_ttl_seconds = 60
"""

_ENV = """# Copy to server.env, fill in, `chmod 600 server.env`; never commit it.
MLFLOW_BACKEND_STORE_URI={backend}
POSTGRES_PASSWORD=change-me
MLFLOW_AUTH_ADMIN_PASSWORD=change-me-at-least-12-chars
MLFLOW_FLASK_SERVER_SECRET_KEY=change-me-random-hex
"""


def write_server_files(out: Path, *, backend: str, artifacts: str, port: int, default_permission: str,
                       python: str = "/opt/wxops/venv/bin/python", force: bool = False) -> list[Path]:
    """Write the unit, the compose file, the auth ini and an env placeholder into ``out``."""
    if default_permission not in PERMISSIONS:
        raise DeployError(f"default permission {default_permission!r} is not one of {', '.join(PERMISSIONS)}")
    if not 0 < port < 65536:
        raise DeployError(f"port {port} is out of range 1-65535")
    if "://" in backend and "@" in backend and ":" in backend.split("://", 1)[1].split("@", 1)[0]:
        raise DeployError("the backend URI holds a password: leave it out here and put the full URI "
                          "in server.env (MLFLOW_BACKEND_STORE_URI)")
    flags = _FLAGS.format(artifacts=artifacts, port=port)
    files = {
        "wxops-mlflow.service": _UNIT.format(python=python, flags=flags, artifacts=artifacts),
        "compose.server.yaml": _COMPOSE.format(flags=flags, artifacts=artifacts, port=port,
                                               mlflow=version("mlflow")),
        "basic_auth.ini": _INI.format(permission=default_permission),
        "server.env.example": _ENV.format(backend=backend.replace("postgresql://", "postgresql+psycopg://")),
    }
    targets = [out / name for name in files]
    clash = [str(p) for p in targets if p.exists()]
    if clash and not force:
        raise DeployError(f"{', '.join(clash)} already exist(s); use --force to overwrite")
    out.mkdir(parents=True, exist_ok=True)
    for path, text in zip(targets, files.values(), strict=True):
        path.write_text(text, encoding="utf-8")
    os.chmod(out / "basic_auth.ini", 0o640)
    return targets
