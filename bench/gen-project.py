#!/usr/bin/env python3
"""Writes a servin.toml with N containers of realistic shape into a folder.

Usage: gen-project.py DIR [N]
"""
import os
import sys

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
os.makedirs(os.path.join(out, "site"), exist_ok=True)
with open(os.path.join(out, "app.env"), "w") as f:
    f.write("LOG_LEVEL=info\nFEATURE_X=1\n")

lines = ['[project]\nname = "bench"\n']
lines.append('[images.app]\nref = "registry.local/acme/app:1.4"\n')
lines.append('[networks.front]\n\n[networks.back]\ninternal = true\n')
for i in range(n):
    lines.append(f'[volumes.data-{i}]\n')
for i in range(n):
    deps = f'depends_on = {{ svc-{i - 1} = "healthy" }}\n' if i % 10 else ""
    lines.append(
        f"""[containers.svc-{i}]
image = "{'app' if i % 2 else 'postgres:16'}"
command = ["serve", "--port", "80", "--id", "{i}"]
env = {{ SERVICE = "svc-{i}", DATABASE_URL = "postgres://db:5432/app", TAG = "${{TAG:-dev}}" }}
env_file = "app.env"
ports = ["{10000 + i}:80", "127.0.0.1:{20000 + i}:9090/udp"]
volumes = ["data-{i}:/var/lib/data", "./site:/srv/site:ro"]
networks = {{ front = {{ aliases = ["s{i}"] }}, back = {{}} }}
{deps}healthcheck = {{ cmd = "wget -qO- localhost/health", interval = "5s", timeout = "2s", retries = 3 }}
restart = "on-failure:3"
resources = {{ memory = "256m", cpus = 0.5, pids = 256 }}
labels = {{ team = "core", index = "{i}" }}
stop_timeout = "15s"
"""
    )
with open(os.path.join(out, "servin.toml"), "w") as f:
    f.write("\n".join(lines))
